"""Leads for operators: search, the whole story of one lead, re-delivery and re-route."""

from __future__ import annotations

import base64
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from leadflood.admin import repository as repo
from leadflood.auctions import repository as auctions_repo
from leadflood.core.errors import BadRequest, Conflict, NotFound
from leadflood.core.principal import Principal
from leadflood.core.status import DeliveryStatus, LeadStatus
from leadflood.core.uow import Tx
from leadflood.delivery import repository as delivery_repo
from leadflood.delivery.service import redeliver as reopen_delivery
from leadflood.routing.repository import Decision
from leadflood.routing.service import RoutingService

LEAD_STATUSES = tuple(LeadStatus)


@dataclass(frozen=True)
class LeadQuery:
    status: str | None = None
    offer_id: uuid.UUID | None = None
    source_id: uuid.UUID | None = None
    buyer_id: uuid.UUID | None = None
    q: str | None = None
    created_from: datetime | None = None
    created_to: datetime | None = None
    cursor: str | None = None
    limit: int = 50


def encode_cursor(created_at: datetime, lead_id: uuid.UUID) -> str:
    return base64.urlsafe_b64encode(f"{created_at.isoformat()}|{lead_id}".encode()).decode()


def decode_cursor(cursor: str) -> tuple[datetime, uuid.UUID]:
    try:
        at, _, lead_id = base64.urlsafe_b64decode(cursor.encode()).decode().partition("|")
        return datetime.fromisoformat(at), uuid.UUID(lead_id)
    except (ValueError, UnicodeDecodeError):
        raise BadRequest("invalid_cursor", "cursor is not one this API returned") from None


async def search(tx: Tx, query: LeadQuery) -> dict[str, Any]:
    if query.status and query.status not in LEAD_STATUSES:
        raise BadRequest("invalid_status", f"status must be one of {', '.join(LEAD_STATUSES)}")
    if not 1 <= query.limit <= 200:
        raise BadRequest("invalid_limit", "limit must be between 1 and 200")
    after = decode_cursor(query.cursor) if query.cursor else None
    rows = await repo.search_leads(
        tx,
        status=query.status,
        offer_id=query.offer_id,
        source_id=query.source_id,
        buyer_id=query.buyer_id,
        query=query.q,
        created_from=query.created_from,
        created_to=query.created_to,
        after=after,
        limit=query.limit + 1,
    )
    more = len(rows) > query.limit
    rows = rows[: query.limit]
    last = rows[-1] if rows else None
    return {
        "items": rows,
        "next_cursor": encode_cursor(last.created_at, last.id) if more and last else None,
    }


async def detail(tx: Tx, lead_id: uuid.UUID) -> dict[str, Any]:
    """Raw and normalized fields, validation outcome, every routing decision, delivery."""
    found = await repo.lead_detail(tx, lead_id)
    if found is None:
        raise NotFound("lead_not_found", "no lead with this id")
    lead = found.lead
    decisions = await _name_buyers(tx, await RoutingService(tx).decisions(lead_id))
    delivery, attempts = await _delivery(tx, lead_id)
    # A waterfall tries several buyers on one delivery: each attempt names its buyer.
    tried = sorted({a.buyer_id for a in attempts if a.buyer_id})
    attempt_buyers = {str(k): v for k, v in (await repo.buyer_names(tx, tried)).items()}
    return {
        "attempt_buyers": attempt_buyers,
        "lead": lead,
        "raw_payload": found.raw_payload,
        "normalized": {"email": lead.normalized_email, "phone": lead.normalized_phone},
        "validation": {
            "validated_at": lead.validated_at,
            "rejection_reasons": lead.rejection_reasons or [],
            "duplicate_of_lead_id": lead.duplicate_of_lead_id,
        },
        "routing": decisions,
        # The auction it was sold by (ping-post or post auction), beside the routing trace.
        "auction": await auctions_repo.auction_of_lead(tx, lead_id),
        "other_sales": await repo.other_sales(tx, lead_id),
        "delivery": delivery,
        "attempts": attempts,
    }


async def routing(tx: Tx, lead_id: uuid.UUID) -> list[Decision]:
    """Every routing decision, each candidate with its buyer's name; NotFound if no lead."""
    return await _name_buyers(tx, await RoutingService(tx).trace(lead_id))


async def delivery(tx: Tx, lead_id: uuid.UUID) -> dict[str, Any]:
    found, attempts = await _delivery(tx, lead_id)
    if found is None:
        await _status(tx, lead_id)  # NotFound for an unknown lead
    return {"delivery": found, "attempts": attempts}


async def _name_buyers(tx: Tx, decisions: list[Decision]) -> list[Decision]:
    """Each candidate of each decision gets its buyer's current name."""
    considered = {
        uuid.UUID(c["buyer_id"]) for d in decisions for c in d.candidates if c.get("buyer_id")
    }
    names = await repo.buyer_names(tx, sorted(considered))
    for decision in decisions:
        for candidate in decision.candidates:
            if candidate.get("buyer_id"):
                candidate["buyer_name"] = names.get(uuid.UUID(candidate["buyer_id"]))
    return decisions


async def _delivery(
    tx: Tx, lead_id: uuid.UUID
) -> tuple[delivery_repo.Delivery | None, list[delivery_repo.Attempt]]:
    found = await delivery_repo.delivery(tx, lead_id)
    attempts = await delivery_repo.attempts(tx, lead_id) if found else []
    return found, attempts


DELIVERY_STATUSES = tuple(DeliveryStatus)


async def deliveries(
    tx: Tx,
    *,
    status: str | None = None,
    buyer_id: uuid.UUID | None = None,
    limit: int = 100,
    offset: int = 0,
) -> list[repo.DeliveryListItem]:
    if status and status not in DELIVERY_STATUSES:
        raise BadRequest("invalid_status", f"status must be one of {', '.join(DELIVERY_STATUSES)}")
    return await repo.list_deliveries(
        tx, status=status, buyer_id=buyer_id, limit=limit, offset=offset
    )


async def redeliver(tx: Tx, principal: Principal | None, lead_id: uuid.UUID) -> dict:
    """Give a `delivery_failed` lead a new round of delivery attempts to the same buyer."""
    reopened = await reopen_delivery(tx, lead_id)
    status = await _status(tx, lead_id)
    if not reopened and status == LeadStatus.delivery_failed:
        raise Conflict(
            "insufficient_balance",
            "the prepaid buyer's balance cannot cover this lead again; top up first",
            details={"status": status},
        )
    if not reopened:
        raise Conflict(
            "not_redeliverable",
            "only a lead whose delivery failed can be re-delivered",
            details={"status": status},
        )
    await tx.audit(principal, "redeliver", "lead", lead_id)
    return {"lead_id": lead_id, "result": "delivery_scheduled", "status": status}


async def reroute(tx: Tx, principal: Principal | None, lead_id: uuid.UUID) -> dict:
    """Route a lead that found no buyer again, now (after caps, hours or buyers changed)."""
    status = await _status(tx, lead_id)
    if status not in (LeadStatus.validated, LeadStatus.unsold):
        raise Conflict(
            "not_reroutable",
            "only a lead that found no buyer (validated or unsold) can be re-routed",
            details={"status": status},
        )
    routing = RoutingService(tx)
    if status == LeadStatus.unsold:
        result = await routing.reroute_unsold(lead_id)
    else:
        result = await routing.route(lead_id)
    await tx.audit(principal, "reroute", "lead", lead_id, {"outcome": result.outcome})
    return {"lead_id": lead_id, "result": result.outcome, "status": await _status(tx, lead_id)}


async def _status(tx: Tx, lead_id: uuid.UUID) -> str:
    status = await repo.lead_status(tx, lead_id)
    if status is None:
        raise NotFound("lead_not_found", "no lead with this id")
    return status


async def dashboard(tx: Tx, *, days: int = 14, tz: str = "UTC") -> dict[str, Any]:
    """Today's funnel (UTC day) and per-day counts for the chart."""
    now = datetime.now(UTC)
    today = now.replace(hour=0, minute=0, second=0, microsecond=0)
    funnel = await repo.funnel(tx, today, today + timedelta(days=1))
    daily = await repo.daily_counts(tx, today - timedelta(days=days - 1), tz)
    by_day = {row.day: row for row in daily}
    first = today - timedelta(days=days - 1)
    series = [
        by_day.get(day) or repo.DayCounts(day=day)
        for day in ((first + timedelta(days=n)).date() for n in range(days))
    ]
    return {"today": funnel, "days": series}
