"""Everything an operator works a buyer from: its offers and prices, caps with today's
and this hour's use, service areas, schedule, balance, health, acceptance and rejection
rates, recent deliveries with their reasons. Reads only; changes go through the
configuration service (validated and audited there)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from leadflood.admin import config_service as config
from leadflood.admin import repository as repo
from leadflood.admin.resources import RESOURCES
from leadflood.core.uow import Tx
from leadflood.routing.schedule import DAYS
from leadflood.routing.selection import local_windows

RATE_WINDOW = timedelta(days=7)


@dataclass(frozen=True, slots=True)
class CapUse:
    name: str
    cap: int | None
    used: int


@dataclass(frozen=True, slots=True)
class OfferLine:
    offer: repo.BuyerOfferRow
    caps: list[CapUse]


@dataclass(frozen=True, slots=True)
class Overview:
    buyer: dict[str, Any]
    offers: list[OfferLine]
    caps: list[CapUse]
    areas_total: int
    areas: list[repo.AreaRow]
    outcomes: repo.Outcomes
    acceptance_rate: float | None
    rejection_rate: float | None
    recent: list[repo.RecentDelivery]
    schedule: list[tuple[str, str, str]]  # (day, first window start, end); "" when closed
    always_open: bool


def _used(window: datetime | None, count: int, current: datetime) -> int:
    return count if window == current else 0


def _schedule_rows(schedule: dict[str, Any]) -> list[tuple[str, str, str]]:
    rows = []
    for day in DAYS:
        windows = schedule.get(day) or []
        start, end = (windows[0][0], windows[0][1]) if windows else ("", "")
        rows.append((day, start, end))
    return rows


async def overview(tx: Tx, buyer_id: uuid.UUID, now: datetime | None = None) -> Overview:
    at = now or datetime.now(UTC)
    buyer = (await config.get(tx, RESOURCES["buyers"], buyer_id)).model_dump()
    day, hour = local_windows(buyer.get("timezone") or "UTC", at)
    counters = await repo.buyer_counters(tx, buyer_id)
    assert counters is not None  # the buyer was just read
    caps = [
        CapUse(
            "daily",
            buyer.get("daily_cap"),
            _used(counters.cap_day_window, counters.cap_day_count, day),
        ),
        CapUse(
            "hourly",
            buyer.get("hourly_cap"),
            _used(counters.cap_hour_window, counters.cap_hour_count, hour),
        ),
    ]
    offers = [
        OfferLine(
            o,
            [
                CapUse("daily", o.daily_cap, _used(o.cap_day_window, o.cap_day_count, day)),
                CapUse("hourly", o.hourly_cap, _used(o.cap_hour_window, o.cap_hour_count, hour)),
            ],
        )
        for o in await repo.buyer_offers(tx, buyer_id)
    ]
    total, areas = await repo.service_areas(tx, buyer_id, 50)
    outcomes = await repo.attempt_outcomes(tx, buyer_id, at - RATE_WINDOW)
    answered = outcomes.accepted + outcomes.rejected
    schedule = buyer.get("schedule") or {}
    return Overview(
        buyer=buyer,
        offers=offers,
        caps=caps,
        areas_total=total,
        areas=areas,
        outcomes=outcomes,
        acceptance_rate=outcomes.accepted / answered if answered else None,
        rejection_rate=outcomes.rejected / answered if answered else None,
        recent=await repo.recent_deliveries(tx, buyer_id, 20),
        schedule=_schedule_rows(schedule),
        always_open=not schedule,
    )


def schedule_from_form(form: dict[str, str]) -> dict[str, list[list[str]]]:
    """The weekly editor's rows (one window a day; a day without both times is closed).
    All days empty: open around the clock."""
    schedule: dict[str, list[list[str]]] = {}
    for day in DAYS:
        start, end = form.get(f"{day}_start", "").strip(), form.get(f"{day}_end", "").strip()
        if start and end:
            schedule[day] = [[start, end]]
    return schedule
