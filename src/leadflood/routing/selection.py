"""Eligibility, exclusivity and strategy selection: pure, deterministic functions."""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from leadflood.core.status import BuyerStatus
from leadflood.routing.schedule import Compiled, is_open, zone


@dataclass(slots=True)
class Candidate:
    buyer_id: uuid.UUID
    name: str
    enrolled: bool
    status: str
    timezone: str
    schedule: Compiled
    covered: bool
    priority: int
    weight: int
    price_cents: int
    last_routed_at: datetime | None
    payment_method: str
    balance_cents: int
    min_balance_cents: int
    delivery_channel: str
    daily_cap: int | None
    hourly_cap: int | None
    offer_daily_cap: int | None
    offer_hourly_cap: int | None
    cap_day_window: datetime | None = None
    cap_day_count: int = 0
    cap_hour_window: datetime | None = None
    cap_hour_count: int = 0
    offer_day_window: datetime | None = None
    offer_day_count: int = 0
    offer_hour_window: datetime | None = None
    offer_hour_count: int = 0
    rejected_lead: bool = False  # this buyer already refused this lead (the waterfall)
    shared_price_cents: int | None = None  # its price for a shared lead (None: exclusive only)
    reasons: list[str] = field(default_factory=list)
    # A lead sold by auction: this buyer's standing bid (its rank, 1 = best), or no bid.
    bid_rank: int | None = None
    no_bid: bool = False

    @property
    def eligible(self) -> bool:
        return not self.reasons

    @property
    def buyer_capped(self) -> bool:
        return self.daily_cap is not None or self.hourly_cap is not None

    def trace(self, selected: uuid.UUID | None) -> dict[str, Any]:
        bid = {"bid_rank": self.bid_rank} if self.bid_rank is not None else {}
        return bid | {
            "buyer_id": str(self.buyer_id),
            "reasons": self.reasons,
            "selected": self.buyer_id == selected,
            "priority": self.priority,
            "weight": self.weight,
            "price_cents": self.price_cents,
            "last_routed_at": self.last_routed_at.isoformat() if self.last_routed_at else None,
        }


def local_windows(timezone: str, at: datetime) -> tuple[datetime, datetime]:
    """Start of the current local day and hour in `timezone` (naive wall-clock)."""
    local = at.astimezone(zone(timezone)).replace(tzinfo=None)
    return (
        local.replace(hour=0, minute=0, second=0, microsecond=0),
        local.replace(minute=0, second=0, microsecond=0),
    )


class DecisionClock:
    """The decision time seen from each buyer timezone, computed once per zone."""

    __slots__ = ("_windows", "at")

    def __init__(self, at: datetime) -> None:
        self.at = at
        self._windows: dict[str, tuple[datetime, datetime]] = {}

    def windows(self, timezone: str) -> tuple[datetime, datetime]:
        found = self._windows.get(timezone)
        if found is None:
            found = self._windows[timezone] = local_windows(timezone, self.at)
        return found


def evaluate(candidate: Candidate, clock: DecisionClock) -> list[str]:
    """Every reason this buyer cannot take the lead now (empty = eligible)."""
    reasons: list[str] = []
    day, hour = clock.windows(candidate.timezone)
    c = candidate
    day_count = c.cap_day_count if c.cap_day_window == day else 0
    hour_count = c.cap_hour_count if c.cap_hour_window == hour else 0
    offer_day_count = c.offer_day_count if c.offer_day_window == day else 0
    offer_hour_count = c.offer_hour_count if c.offer_hour_window == hour else 0
    if candidate.rejected_lead:
        reasons.append("rejected_this_lead")
    if candidate.no_bid:
        reasons.append("no_bid")
    if not candidate.enrolled:
        reasons.append("not_enrolled")
    if candidate.status != BuyerStatus.active:
        reasons.append("paused")
    if not candidate.covered:
        reasons.append("outside_service_area")
    if not is_open(candidate.schedule, candidate.timezone, clock.at):
        reasons.append("outside_schedule")
    if _reached(c.daily_cap, day_count) or _reached(c.offer_daily_cap, offer_day_count):
        reasons.append("daily_cap_reached")
    if _reached(c.hourly_cap, hour_count) or _reached(c.offer_hourly_cap, offer_hour_count):
        reasons.append("hourly_cap_reached")
    if candidate.payment_method == "prepaid" and (
        candidate.balance_cents - candidate.price_cents < candidate.min_balance_cents
    ):
        reasons.append("insufficient_balance")
    return reasons


def _reached(cap: int | None, count: int) -> bool:
    return cap is not None and count >= cap


def _routed_key(candidate: Candidate) -> float:
    """Oldest routing first; a buyer never routed sorts before everyone."""
    if candidate.last_routed_at is None:
        return float("-inf")
    return candidate.last_routed_at.timestamp()


def weighted_point(lead_id: uuid.UUID) -> float:
    return int(hashlib.sha256(str(lead_id).encode()).hexdigest()[:16], 16) / 2**64


def apply_bids(pool: list[Candidate], bids: list[Any]) -> None:
    """A lead sold by auction goes to its bidders only, each at its bid."""
    by_buyer = {b.buyer_id: b for b in bids}
    for c in pool:
        bid = by_buyer.get(c.buyer_id)
        if bid is None:
            c.no_bid = True
        else:
            c.price_cents, c.bid_rank = bid.price_cents, bid.rank


def exclude(eligible: list[Candidate], buyers: set[uuid.UUID], reason: str) -> list[Candidate]:
    """The eligible candidates but `buyers`, who get `reason` on their trace."""
    for c in eligible:
        if c.buyer_id in buyers:
            c.reasons.append(reason)
    return [c for c in eligible if c.eligible]


def choose(strategy: str, eligible: list[Candidate], lead_id: uuid.UUID) -> Candidate:
    if not eligible:
        raise ValueError("no eligible buyer")
    if strategy == "auction":  # the best standing bid (ranked when the auction closed)
        return min(eligible, key=lambda c: (c.bid_rank or 0, c.buyer_id))
    if strategy == "priority":
        return min(eligible, key=lambda c: (c.priority, _routed_key(c), c.buyer_id))
    if strategy == "rotation":
        return min(eligible, key=lambda c: (_routed_key(c), c.priority, c.buyer_id))
    if strategy == "weighted":
        ordered = sorted(eligible, key=lambda c: c.buyer_id)
        total = sum(c.weight for c in ordered)
        point = weighted_point(lead_id)
        cumulative = 0
        for c in ordered:
            cumulative += c.weight
            if cumulative / total > point:
                return c
        return ordered[-1]
    raise ValueError(f"unknown strategy {strategy!r}")


def choose_sales(
    strategy: str, eligible: list[Candidate], lead_id: uuid.UUID, max_sales: int
) -> list[Candidate]:
    """Multi-sell: up to `max_sales` buyers who take shared leads, picked in the strategy's
    order, each at its shared price; or the one exclusive sale when its price beats the
    shares' sum (only when higher: a tie sells shared). Prices set on the candidates."""
    exclusive = choose(strategy, eligible, lead_id)
    pool = [c for c in eligible if c.shared_price_cents is not None]
    shares: list[Candidate] = []
    while pool and len(shares) < max_sales:
        pick = choose(strategy, pool, lead_id)
        shares.append(pick)
        pool.remove(pick)
    total = sum(c.shared_price_cents or 0 for c in shares)
    if len(shares) < 2 or exclusive.price_cents > total:
        return [exclusive]
    for c in shares:
        c.price_cents = c.shared_price_cents or 0
    return shares
