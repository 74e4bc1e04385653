"""Ping-post auctions (issue 17, decision 0022).

An auction runs in three steps, each on what its boundary gives it: `plan_*` reads, in a
unit of work, which buyers may buy (routing's own eligibility, over the ping's place) and
how to ask each; `bidding.collect` asks them with nothing held; `record` stores the
auction and its bids. A post then claims its ping in one unit of work with the lead.
"""

from __future__ import annotations

import os
import re
import time
import uuid
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import orjson

from leadflood.auctions import repository as repo
from leadflood.auctions.bidding import Ask, build_ask
from leadflood.auctions.repository import BidRow, NewAuction, SaleTerms
from leadflood.core.errors import AppError, BadRequest, Conflict, Forbidden, NotFound
from leadflood.core.uow import Tx
from leadflood.ingestion.payload import (
    CONTACT_DETAILS,
    CONTACT_FIELDS,
    LeadPayload,
    custom_fields,
    parse_body,
)
from leadflood.ingestion.service import (
    IngestRequest,
    PreparedLead,
    prepare_lead,
    source_of,
    store_lead,
)
from leadflood.ingestion.source_cache import SourceCache
from leadflood.routing import repository as routing_repo
from leadflood.routing.selection import DecisionClock, exclude
from leadflood.routing.service import eligible_for

# A ping may name the consumer by hashed email and phone (dedupe against past purchases).
HASHES = ("email_hash", "phone_hash")
_CONTROL = frozenset({"source_id", "source_key", "idempotency_key", "ping_id", *HASHES})
_HEX64 = re.compile(r"^[0-9a-f]{64}$")


def time_ordered_id() -> uuid.UUID:
    """A UUIDv7 (RFC 9562): milliseconds first, so each auction's bids land at the end
    of their index rather than on a random page."""
    ms = time.time_ns() // 1_000_000
    rand = int.from_bytes(os.urandom(10), "big")
    value = (ms & (2**48 - 1)) << 80 | 0x7 << 76 | (rand >> 68 & 0xFFF) << 64
    value |= 0b10 << 62 | rand & (2**62 - 1)
    return uuid.UUID(int=value)


class PingExpired(AppError, status=410, code="ping_expired"): ...


@dataclass(frozen=True)
class Plan:
    """An auction about to ask its bidders."""

    auction_id: uuid.UUID
    kind: str  # ping | post
    source_id: uuid.UUID
    offer_id: uuid.UUID
    market_id: uuid.UUID
    ping: dict[str, Any]
    terms: SaleTerms
    fixed: list[BidRow]
    asks: list[Ask]
    trace: list[dict[str, Any]]
    started: float  # perf_counter at the start
    lead_id: uuid.UUID | None = None
    ignored: tuple[str, ...] = ()


@dataclass(frozen=True)
class Closed:
    auction: NewAuction
    bids: list[BidRow]
    ignored: tuple[str, ...]


# ---- the ping ------------------------------------------------------------------------------


def ping_data(raw: dict[str, Any], allowed: list[str]) -> tuple[dict[str, Any], tuple[str, ...]]:
    """What of a posted ping the bidders may see: the offer's ping fields (never contact
    details) and the hashes; the names of the fields left out."""
    allowed_set = set(allowed) - CONTACT_DETAILS
    kept: dict[str, Any] = {}
    for name in HASHES:
        value = raw.get(name)
        if value is None:
            continue
        text = str(value).strip().lower()
        if not _HEX64.match(text):
            raise BadRequest(
                "invalid_field", f"{name} must be a SHA-256 hex digest", details={"field": name}
            )
        kept[name] = text
    for name, value in raw.items():
        if name in allowed_set and not isinstance(value, dict | list):
            kept[name] = value
    ignored = tuple(sorted(k for k in raw if k not in kept and k not in _CONTROL))
    return kept, ignored


async def plan_ping(
    tx: Tx, sources: SourceCache, request: IngestRequest, *, secret_key: str
) -> Plan:
    started = time.perf_counter()
    payload = parse_body(request.body, request.content_type)
    binding = await source_of(tx, sources, request, payload)
    terms = await _terms(tx, binding.source_id)
    ping, ignored = ping_data(payload.raw, terms.ping_fields)
    auction_id = time_ordered_id()
    context = {
        **ping,
        "custom": {k: v for k, v in ping.items() if k not in CONTACT_FIELDS},
        "ping_id": str(auction_id),
        "offer": {"id": str(binding.offer_id)},
        "market": {"id": str(binding.market_id)},
        "source": {"id": str(binding.source_id)},
    }
    plan = await _plan(
        tx,
        auction_id=auction_id,
        kind="ping",
        source_id=binding.source_id,
        offer_id=binding.offer_id,
        market_id=binding.market_id,
        postal_code=_text(ping.get("postal_code")),
        city=_text(ping.get("city")),
        ping=ping,
        context=context,
        terms=terms,
        secret_key=secret_key,
        started=started,
    )
    return replace(plan, ignored=ignored)


async def plan_post_auction(tx: Tx, lead_id: uuid.UUID, *, secret_key: str) -> Plan | None:
    """A validated lead of an offer that sells direct posts by auction, not yet
    auctioned: its auction, the bidders seeing the whole lead. None otherwise."""
    started = time.perf_counter()
    lead = await repo.lead_for_post_auction(tx, lead_id)
    if lead is None:
        return None
    terms = await _terms(tx, lead.source_id)
    custom = custom_fields(lead.raw_payload or {})
    context = {
        **lead.fields,
        "custom": custom,
        "lead_id": str(lead.id),
        "ping_id": None,  # set below: the auction's id
        "offer": {"id": str(lead.offer_id)},
        "market": {"id": str(lead.market_id)},
        "source": {"id": str(lead.source_id)},
    }
    auction_id = time_ordered_id()
    context["ping_id"] = str(auction_id)
    return await _plan(
        tx,
        auction_id=auction_id,
        kind="post",
        source_id=lead.source_id,
        offer_id=lead.offer_id,
        market_id=lead.market_id,
        postal_code=lead.postal_code,
        city=lead.city,
        ping={},
        context=context,
        terms=terms,
        secret_key=secret_key,
        started=started,
        lead_id=lead.id,
    )


async def _terms(tx: Tx, source_id: uuid.UUID) -> SaleTerms:
    terms = await repo.sale_terms(tx, source_id)
    if terms is None:  # the source was classified a moment ago
        raise BadRequest("invalid_source", "the source is gone")
    return terms


def _text(value: Any) -> str | None:
    return None if value is None else str(value)


async def _plan(
    tx: Tx,
    *,
    auction_id: uuid.UUID,
    kind: str,
    source_id: uuid.UUID,
    offer_id: uuid.UUID,
    market_id: uuid.UUID,
    postal_code: str | None,
    city: str | None,
    ping: dict[str, Any],
    context: dict[str, Any],
    terms: SaleTerms,
    secret_key: str,
    started: float,
    lead_id: uuid.UUID | None = None,
) -> Plan:
    """Who may buy (routing's eligibility, exclusivity included, over this place) and
    how each bids: its contract price, or asked through its ping integration."""
    at = datetime.now(UTC)
    place = await routing_repo.ping_place(
        tx,
        offer_id=offer_id,
        market_id=market_id,
        postal_code=postal_code,
        city=city,
        at=at,
        stand_in=lead_id or auction_id,
    )
    assert place is not None, "the source's offer exists"
    pool = await routing_repo.candidates(tx, place)
    _, eligible = eligible_for(place, pool, DecisionClock(at))
    bought = await repo.bought_before(
        tx,
        offer_id,
        [c.buyer_id for c in eligible],
        ping.get("email_hash"),
        ping.get("phone_hash"),
    )
    eligible = exclude(eligible, bought, "already_bought")
    configs = {b.buyer_id: b for b in await repo.bidder_configs(tx, [c.buyer_id for c in eligible])}
    fixed, asks = [], []
    for c in eligible:
        config = configs.get(c.buyer_id)
        if config is None:
            fixed.append(BidRow(c.buyer_id, "fixed", "bid", c.price_cents, None, None, None, None))
        else:
            asks.append(
                build_ask(
                    config,
                    c.price_cents,
                    context,
                    ping_id=auction_id,
                    timeout_ms=min(config.ping_timeout_ms, terms.ping_budget_ms),
                    secret_key=secret_key,
                )
            )
    trace = [{"buyer_id": str(c.buyer_id), "reasons": c.reasons} for c in pool if c.reasons]
    return Plan(
        auction_id=auction_id,
        kind=kind,
        source_id=source_id,
        offer_id=offer_id,
        market_id=market_id,
        ping=ping,
        terms=terms,
        fixed=fixed,
        asks=asks,
        trace=trace,
        started=started,
        lead_id=lead_id,
    )


def offered_payout(terms: SaleTerms, price_cents: int) -> int | None:
    """What the source's rule pays for a sale at `price_cents` (None: no rule). The
    ledger applies the same rule to the price the lead actually sells for."""
    if terms.payout_type == "fixed":
        return terms.payout_cents or 0
    if terms.payout_type == "revenue_share":
        share = Decimal(price_cents) * (terms.payout_share or Decimal(0))
        return int(share.quantize(Decimal(1), rounding=ROUND_HALF_UP))
    if terms.payout_type == "bid_margin":
        return max(price_cents - (terms.payout_cents or 0), 0)
    return None


# Fixed-price bids kept row by row: the best this many. A fixed bid is its contract's
# price, known from the configuration; a thousand contracts on one offer would otherwise
# write a thousand rows per ping (1.4 billion a day at 1,000 pings a minute) and double
# the ping's time. A post falls through the kept bids; the rest are counted.
KEPT_FIXED_BIDS = 100


def close(plan: Plan, bids: list[BidRow]) -> Closed:
    """The auction as it is stored: the best bid, what the source is offered, when the
    bids lapse; every asked buyer's answer and the best fixed-price bids."""
    best = bids[0] if bids and bids[0].outcome == "bid" else None
    standing = sum(1 for b in bids if b.outcome == "bid")
    kept = [b for b in bids if b.kind == "ping" or (b.rank or 0) <= KEPT_FIXED_BIDS]
    price = best.price_cents if best else None
    auction = NewAuction(
        id=plan.auction_id,
        kind=plan.kind,
        source_id=plan.source_id,
        offer_id=plan.offer_id,
        market_id=plan.market_id,
        ping=plan.ping,
        accepted=best is not None,
        price_cents=price,
        payout_cents=offered_payout(plan.terms, price) if price is not None else None,
        trace=plan.trace,
        budget_ms=plan.terms.ping_budget_ms,
        duration_ms=round((time.perf_counter() - plan.started) * 1000, 3),
        expires_at=datetime.now(UTC) + timedelta(seconds=plan.terms.ping_ttl_seconds),
        lead_id=plan.lead_id,
        bid_count=standing,
    )
    return Closed(auction, kept, plan.ignored)


async def record(tx: Tx, closed: Closed) -> bool:
    """Store the auction with its bids (in the caller's unit of work)."""
    return await repo.insert_auction(tx, closed.auction, closed.bids)


def ping_answer(closed: Closed) -> dict[str, Any]:
    a = closed.auction
    payout = a.payout_cents if a.accepted else None
    return {
        "ping_id": str(a.id),
        "accepted": a.accepted,
        "price_cents": payout,
        "price": f"{payout / 100:.2f}" if payout is not None else None,
        "expires_at": a.expires_at.isoformat().replace("+00:00", "Z"),
        "ignored_fields": list(closed.ignored),
    }


# ---- the post ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Posted:
    ping: repo.PingToPost
    lead_id: uuid.UUID
    terms: SaleTerms


def without_ping_id(payload: LeadPayload) -> tuple[uuid.UUID, LeadPayload]:
    """The ping id a post names, and the lead without it."""
    value = payload.raw.get("ping_id")
    if value is None or value == "":
        raise BadRequest("ping_id_required", "a post names the ping_id its ping answered")
    try:
        ping_id = uuid.UUID(str(value).strip())
    except ValueError:
        raise NotFound("ping_not_found", "no ping with this id") from None
    raw = {k: v for k, v in payload.raw.items() if k != "ping_id"}
    return ping_id, replace(payload, raw=raw, raw_text=orjson.dumps(raw).decode())


async def post(tx: Tx, sources: SourceCache, request: IngestRequest) -> Posted:
    """The lead of a ping: classified and authenticated like any lead, then, in this one
    unit of work, its ping claimed (known, this source's, in time, not yet posted, with a
    bid) and the lead stored, linked to it, with its validation job."""
    ping_id, payload = without_ping_id(parse_body(request.body, request.content_type))
    prepared: PreparedLead = await prepare_lead(tx, sources, request, payload)
    ping = await repo.ping_for_post(tx, ping_id)
    if ping is None or ping.kind != "ping":
        raise NotFound("ping_not_found", "no ping with this id")
    if ping.source_id != prepared.binding.source_id:
        raise Forbidden("ping_wrong_source", "this ping was made by another source")
    if ping.lead_id is not None:
        raise Conflict(
            "ping_already_posted",
            "this ping's lead was posted already",
            details={"lead_id": str(ping.lead_id)},
        )
    if ping.expired:
        raise PingExpired(
            message="the ping's bids have lapsed; ping again",
            details={"expired_at": ping.expires_at.isoformat()},
        )
    if not ping.accepted:
        raise Conflict("ping_not_accepted", "no buyer bid on this ping")
    stored = await store_lead(tx, prepared)
    if not stored.created:
        raise Conflict(
            "lead_already_received",
            "this lead was received before (same idempotency key)",
            details={"lead_id": str(stored.lead.lead_id)},
        )
    await repo.link_lead(tx, ping_id, stored.lead.lead_id)
    return Posted(ping, stored.lead.lead_id, await _terms(tx, ping.source_id))


def post_answer(
    posted: Posted, status: str | None, reasons: tuple[str, ...], sold_cents: int | None
) -> dict[str, Any]:
    """What the source learns at once: whether the lead is placed with a bidder (its
    delivery follows; GET /api/leads/{id} tells when it is delivered) and what it earns
    if that sale completes: the rule over the sale price, never more than the ping
    offered."""
    payout = None
    if sold_cents is not None:
        rule = offered_payout(posted.terms, sold_cents)
        promised = posted.ping.payout_cents
        payout = rule if promised is None or rule is None else min(rule, promised)
    return {
        "ping_id": str(posted.ping.id),
        "lead_id": str(posted.lead_id),
        "status": status,
        "accepted": sold_cents is not None,
        "rejection_reasons": list(reasons),
        "price_cents": payout,
        "price": f"{payout / 100:.2f}" if payout is not None else None,
    }
