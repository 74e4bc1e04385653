"""SQL of the admin views: entity lists, lead search and a lead's full story."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from leadflood.admin.resource_rows import ROW_MODELS, select_list
from leadflood.admin.resources import Resource
from leadflood.core.api import ApiModel
from leadflood.core.uow import Conn
from leadflood.delivery.repository import Delivery
from leadflood.ingestion.normalize import normalize_phone


async def list_rows(
    conn: Conn,
    resource: Resource,
    filters: dict[str, Any],
    *,
    limit: int,
    offset: int,
) -> tuple[list[ApiModel], int]:
    # Column names come from the resource declaration, never from the request.
    names = list(filters)
    where = " AND ".join(f"{c} = ${i}" for i, c in enumerate(names, start=3)) or "true"
    rows = await conn.fetch(
        f"SELECT {select_list(resource)}, count(*) OVER () AS _total FROM {resource.table} "
        f"WHERE {where} ORDER BY {resource.order_by} LIMIT $1 OFFSET $2",
        limit,
        offset,
        *(filters[c] for c in names),
    )
    model = ROW_MODELS[resource.name]
    total = rows[0]["_total"] if rows else 0
    items = [model.model_validate({k: v for k, v in r.items() if k != "_total"}) for r in rows]
    return items, total


async def get_row(conn: Conn, resource: Resource, row_id: uuid.UUID) -> ApiModel | None:
    row = await conn.fetchrow(
        f"SELECT {select_list(resource)} FROM {resource.table} WHERE id = $1", row_id
    )
    return ROW_MODELS[resource.name].model_validate(dict(row)) if row else None


async def delete_row(conn: Conn, table: str, row_id: uuid.UUID) -> bool:
    return await conn.execute(f"DELETE FROM {table} WHERE id = $1", row_id) == "DELETE 1"


async def existing_postal_codes(
    conn: Conn, buyer_id: uuid.UUID, market_id: uuid.UUID
) -> set[tuple[str | None, str | None]]:
    rows = await conn.fetch(
        "SELECT postal_code, city FROM buyer_service_areas WHERE buyer_id = $1 AND market_id = $2",
        buyer_id,
        market_id,
    )
    return {(r["postal_code"], r["city"]) for r in rows}


async def delete_service_areas(conn: Conn, buyer_id: uuid.UUID, market_id: uuid.UUID) -> int:
    status = await conn.execute(
        "DELETE FROM buyer_service_areas WHERE buyer_id = $1 AND market_id = $2",
        buyer_id,
        market_id,
    )
    return int(status.split()[-1])


async def insert_service_areas(
    conn: Conn,
    buyer_id: uuid.UUID,
    market_id: uuid.UUID,
    rows: list[tuple[str | None, str | None]],
) -> None:
    await conn.execute(
        "INSERT INTO buyer_service_areas (buyer_id, market_id, postal_code, city) "
        "SELECT $1, $2, p, c FROM unnest($3::text[], $4::text[]) AS t(p, c)",
        buyer_id,
        market_id,
        [p for p, _ in rows],
        [c for _, c in rows],
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class LeadListItem:
    id: uuid.UUID
    status: str
    created_at: datetime
    first_name: str | None
    last_name: str | None
    email: str | None
    phone: str | None
    postal_code: str | None
    city: str | None
    state: str | None
    price_cents: int | None
    billing_status: str
    rejection_reasons: list[str]
    source_id: uuid.UUID
    source_name: str
    offer_id: uuid.UUID
    offer_slug: str
    offer_name: str
    buyer_id: uuid.UUID | None
    buyer_name: str | None


@dataclass(frozen=True, slots=True, kw_only=True)
class Lead(LeadListItem):
    """A lead's stored fields and names of what it belongs to (its raw payload apart)."""

    market_id: uuid.UUID
    vertical_id: uuid.UUID
    idempotency_key: str
    idempotency_key_derived: bool
    normalized_email: str | None
    normalized_phone: str | None
    address: str | None
    consent: bool | None
    consent_text: str | None
    consent_certificate_url: str | None
    ip: str | None
    user_agent: str | None
    duplicate_of_lead_id: uuid.UUID | None
    validated_at: datetime | None
    routed_at: datetime | None
    delivered_at: datetime | None
    unsold_at: datetime | None
    updated_at: datetime
    market_slug: str
    market_name: str
    vertical_slug: str
    vertical_name: str


_LEAD_LIST_COLUMNS = """
l.id, l.status::text AS status, l.created_at, l.first_name, l.last_name, l.email, l.phone,
l.postal_code, l.city, l.state, l.price_cents, l.billing_status::text AS billing_status,
l.rejection_reasons, l.source_id, s.name AS source_name, l.offer_id, o.slug AS offer_slug,
o.name AS offer_name, l.buyer_id, b.name AS buyer_name
"""

_LEAD_COLUMNS = f"""{_LEAD_LIST_COLUMNS},
l.market_id, l.vertical_id, l.idempotency_key, l.idempotency_key_derived, l.normalized_email,
l.normalized_phone, l.address, l.consent, l.consent_text, l.consent_certificate_url,
host(l.ip) AS ip, l.user_agent, l.duplicate_of_lead_id, l.validated_at, l.routed_at,
l.delivered_at, l.unsold_at, l.updated_at, m.slug AS market_slug, m.name AS market_name,
v.slug AS vertical_slug, v.name AS vertical_name
"""


async def search_leads(
    conn: Conn,
    *,
    status: str | None,
    offer_id: uuid.UUID | None,
    source_id: uuid.UUID | None,
    buyer_id: uuid.UUID | None,
    query: str | None,
    created_from: datetime | None,
    created_to: datetime | None,
    after: tuple[datetime, uuid.UUID] | None,
    limit: int,
) -> list[LeadListItem]:
    clauses = ["true"]
    params: list[Any] = [limit]

    def param(value: Any) -> str:
        params.append(value)
        return f"${len(params)}"

    if status:
        clauses.append(f"l.status = {param(status)}::lead_status")
    for column, value in (("offer_id", offer_id), ("source_id", source_id), ("buyer_id", buyer_id)):
        if value is not None:
            clauses.append(f"l.{column} = {param(value)}")
    if query:
        digits = "".join(ch for ch in query if ch.isdigit())
        # A national number is read as US; a number typed with + and country code as-is.
        phone = normalize_phone(query, "US") if len(digits) >= 7 else None
        q = param(query.strip())
        q_phone = param(phone or "")
        q_prefix = param(query.strip().replace("%", r"\%").replace("_", r"\_") + "%")
        # Exact on the normalized forms (indexed), prefix on names.
        clauses.append(
            f"(l.normalized_email = lower({q}) OR l.normalized_phone = {q_phone} "
            f" OR l.id::text = {q} OR l.last_name ILIKE {q_prefix} "
            f" OR l.first_name ILIKE {q_prefix})"
        )
    if created_from is not None:
        clauses.append(f"l.created_at >= {param(created_from)}")
    if created_to is not None:
        clauses.append(f"l.created_at < {param(created_to)}")
    if after is not None:
        clauses.append(f"(l.created_at, l.id) < ({param(after[0])}, {param(after[1])})")
    rows = await conn.fetch(
        f"SELECT {_LEAD_LIST_COLUMNS} FROM leads l "
        "JOIN sources s ON s.id = l.source_id JOIN offers o ON o.id = l.offer_id "
        "LEFT JOIN buyers b ON b.id = l.buyer_id "
        f"WHERE {' AND '.join(clauses)} "
        "ORDER BY l.created_at DESC, l.id DESC LIMIT $1",
        *params,
    )
    return [LeadListItem(**r) for r in rows]


@dataclass(frozen=True, slots=True, kw_only=True)
class StoredLead:
    lead: Lead
    raw_payload: dict[str, Any]  # the JSON document the source posted, as posted


async def lead_detail(conn: Conn, lead_id: uuid.UUID) -> StoredLead | None:
    row = await conn.fetchrow(
        (
            f"SELECT {_LEAD_COLUMNS}, l.raw_payload "
            "FROM leads l JOIN sources s ON s.id = l.source_id "
            "JOIN offers o ON o.id = l.offer_id JOIN markets m ON m.id = l.market_id "
            "JOIN verticals v ON v.id = l.vertical_id LEFT JOIN buyers b ON b.id = l.buyer_id "
            "WHERE l.id = $1"
        ),
        lead_id,
    )
    if row is None:
        return None
    fields = dict(row)
    raw_payload = fields.pop("raw_payload")
    return StoredLead(lead=Lead(**fields), raw_payload=raw_payload)


async def lead_status(conn: Conn, lead_id: uuid.UUID) -> str | None:
    return await conn.fetchval("SELECT status::text FROM leads WHERE id = $1", lead_id)


async def buyer_names(conn: Conn, ids: list[uuid.UUID]) -> dict[uuid.UUID, str]:
    if not ids:
        return {}
    rows = await conn.fetch("SELECT id, name FROM buyers WHERE id = ANY($1::uuid[])", ids)
    return {r["id"]: r["name"] for r in rows}


@dataclass(frozen=True, slots=True, kw_only=True)
class Option:
    """A choice for a reference field: the id and a readable label."""

    id: uuid.UUID
    label: str


async def option_rows(conn: Conn, table: str, label: str) -> list[Option]:
    rows = await conn.fetch(f"SELECT id, {label} AS label FROM {table} ORDER BY {label}")
    return [Option(**r) for r in rows]


_FUNNEL = """
SELECT count(*) AS received,
       count(*) FILTER (WHERE validated_at IS NOT NULL AND status <> 'rejected') AS validated,
       count(*) FILTER (WHERE status = 'rejected') AS rejected,
       count(*) FILTER (WHERE routed_at IS NOT NULL) AS routed,
       count(*) FILTER (WHERE status = 'validated') AS unrouted,
       count(*) FILTER (WHERE status IN ('delivered', 'returned')) AS delivered,
       count(*) FILTER (WHERE status = 'delivery_failed') AS delivery_failed,
       count(*) FILTER (WHERE status = 'unsold') AS unsold
FROM leads WHERE created_at >= $1 AND created_at < $2
"""

_REJECTION_REASONS = """
SELECT reason, count(*) AS n FROM leads, unnest(rejection_reasons) AS reason
WHERE status = 'rejected' AND created_at >= $1 AND created_at < $2
GROUP BY reason ORDER BY n DESC, reason LIMIT 10
"""

# The latest decision of each lead still waiting in `validated`, by outcome.
_UNROUTED_REASONS = """
SELECT d.outcome AS reason, count(*) AS n
FROM leads l
JOIN LATERAL (
    SELECT outcome FROM routing_decisions r WHERE r.lead_id = l.id
    ORDER BY decided_at DESC LIMIT 1
) d ON true
WHERE l.status = 'validated' AND l.created_at >= $1 AND l.created_at < $2
GROUP BY d.outcome ORDER BY n DESC
"""

_DAILY = """
SELECT (created_at AT TIME ZONE $2)::date AS day,
       count(*) AS received,
       count(*) FILTER (WHERE status = 'rejected') AS rejected,
       count(*) FILTER (WHERE status IN ('delivered', 'returned')) AS delivered,
       count(*) FILTER (WHERE status = 'validated') AS unrouted
FROM leads WHERE created_at >= $1
GROUP BY 1 ORDER BY 1
"""


@dataclass(frozen=True, slots=True, kw_only=True)
class ReasonCount:
    reason: str | None
    n: int


@dataclass(frozen=True, slots=True, kw_only=True)
class Funnel:
    received: int
    validated: int
    rejected: int
    routed: int
    unrouted: int
    delivered: int
    delivery_failed: int
    unsold: int
    rejection_reasons: list[ReasonCount]
    unrouted_reasons: list[ReasonCount]


@dataclass(frozen=True, slots=True, kw_only=True)
class DayCounts:
    day: date
    received: int = 0
    delivered: int = 0
    rejected: int = 0
    unrouted: int = 0


async def funnel(conn: Conn, since: datetime, until: datetime) -> Funnel:
    counts = await conn.fetchrow(_FUNNEL, since, until)
    rejected = await conn.fetch(_REJECTION_REASONS, since, until)
    unrouted = await conn.fetch(_UNROUTED_REASONS, since, until)
    return Funnel(
        **counts,
        rejection_reasons=[ReasonCount(**r) for r in rejected],
        unrouted_reasons=[ReasonCount(**r) for r in unrouted],
    )


async def daily_counts(conn: Conn, since: datetime, tz: str) -> list[DayCounts]:
    return [DayCounts(**r) for r in await conn.fetch(_DAILY, since, tz)]


@dataclass(frozen=True, slots=True)
class DeliveryListItem(Delivery):
    buyer_name: str
    lead_status: str


async def list_deliveries(
    conn: Conn,
    *,
    status: str | None,
    buyer_id: uuid.UUID | None,
    limit: int,
    offset: int,
) -> list[DeliveryListItem]:
    rows = await conn.fetch(
        (
            "SELECT d.id, d.lead_id, d.buyer_id, d.channel::text AS channel, "
            "       d.status::text AS status, d.attempt_count, d.next_attempt_at, "
            "       d.idempotency_key, d.last_error, d.delivered_at, d.created_at, "
            "       b.name AS buyer_name, l.status::text AS lead_status "
            "FROM deliveries d JOIN buyers b ON b.id = d.buyer_id JOIN leads l ON l.id = d.lead_id "
            "WHERE ($1::text IS NULL OR d.status::text = $1) "
            "  AND ($2::uuid IS NULL OR d.buyer_id = $2) "
            "ORDER BY d.created_at DESC, d.id DESC LIMIT $3 OFFSET $4"
        ),
        status,
        buyer_id,
        limit,
        offset,
    )
    return [DeliveryListItem(**r) for r in rows]


# ---- the buyer's page -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class BuyerOfferRow:
    offer_id: uuid.UUID
    offer_name: str
    active: bool
    priority: int
    weight: int
    price_cents: int
    daily_cap: int | None
    hourly_cap: int | None
    cap_day_window: datetime | None
    cap_day_count: int
    cap_hour_window: datetime | None
    cap_hour_count: int


async def buyer_offers(conn: Conn, buyer_id: uuid.UUID) -> list[BuyerOfferRow]:
    rows = await conn.fetch(
        "SELECT bo.offer_id, o.name AS offer_name, bo.active, bo.priority, bo.weight, "
        "bo.price_cents, bo.daily_cap, bo.hourly_cap, bo.cap_day_window, bo.cap_day_count, "
        "bo.cap_hour_window, bo.cap_hour_count FROM buyer_offers bo "
        "JOIN offers o ON o.id = bo.offer_id WHERE bo.buyer_id = $1 ORDER BY o.name",
        buyer_id,
    )
    return [BuyerOfferRow(**r) for r in rows]


@dataclass(frozen=True, slots=True, kw_only=True)
class AreaRow:
    market_name: str
    postal_code: str | None
    city: str | None


async def service_areas(conn: Conn, buyer_id: uuid.UUID, limit: int) -> tuple[int, list[AreaRow]]:
    total = await conn.fetchval(
        "SELECT count(*) FROM buyer_service_areas WHERE buyer_id = $1", buyer_id
    )
    rows = await conn.fetch(
        "SELECT m.name AS market_name, sa.postal_code, sa.city FROM buyer_service_areas sa "
        "JOIN markets m ON m.id = sa.market_id WHERE sa.buyer_id = $1 "
        "ORDER BY m.name, sa.postal_code NULLS FIRST, sa.city LIMIT $2",
        buyer_id,
        limit,
    )
    return total, [AreaRow(**r) for r in rows]


@dataclass(frozen=True, slots=True, kw_only=True)
class Outcomes:
    """A buyer's attempts since a moment, by what came of them."""

    accepted: int
    rejected: int
    errors: int


async def attempt_outcomes(conn: Conn, buyer_id: uuid.UUID, since: datetime) -> Outcomes:
    row = await conn.fetchrow(
        "SELECT count(*) FILTER (WHERE a.outcome = 'success') AS accepted, "
        "       count(*) FILTER (WHERE a.outcome = 'rejected') AS rejected, "
        "       count(*) FILTER (WHERE a.outcome IN ('retryable_error', 'permanent_error')) "
        "           AS errors "
        "FROM delivery_attempts a JOIN deliveries d ON d.id = a.delivery_id "
        "WHERE (a.buyer_id = $1 OR (a.buyer_id IS NULL AND d.buyer_id = $1)) "
        "AND a.started_at >= $2",
        buyer_id,
        since,
    )
    return Outcomes(**row)


@dataclass(frozen=True, slots=True, kw_only=True)
class RecentDelivery:
    lead_id: uuid.UUID
    status: str
    attempt_count: int
    last_error: str | None
    reject_reason: str | None
    buyer_reference: str | None
    price_cents: int | None
    created_at: datetime
    delivered_at: datetime | None


async def recent_deliveries(conn: Conn, buyer_id: uuid.UUID, limit: int) -> list[RecentDelivery]:
    """The buyer's latest deliveries, refusals included (a refused lead's delivery has
    moved on to another buyer: its refusal is read from lead_rejections)."""
    rows = await conn.fetch(
        "SELECT d.lead_id, CASE WHEN d.reject_reason IS NOT NULL AND d.status = 'failed' "
        "       THEN 'rejected' ELSE d.status::text END AS status, d.attempt_count, d.last_error, "
        "       d.reject_reason, d.buyer_reference, l.price_cents, d.created_at, "
        "       d.delivered_at "
        "FROM deliveries d JOIN leads l ON l.id = d.lead_id WHERE d.buyer_id = $1 "
        "UNION ALL "
        "SELECT r.lead_id, 'rejected', 1, NULL, r.reason, NULL, NULL, r.rejected_at, NULL "
        "FROM lead_rejections r JOIN deliveries d ON d.lead_id = r.lead_id "
        "WHERE r.buyer_id = $1 AND d.buyer_id <> $1 "
        "ORDER BY created_at DESC LIMIT $2",
        buyer_id,
        limit,
    )
    return [RecentDelivery(**r) for r in rows]


@dataclass(frozen=True, slots=True, kw_only=True)
class CapCounters:
    cap_day_window: datetime | None
    cap_day_count: int
    cap_hour_window: datetime | None
    cap_hour_count: int


async def buyer_counters(conn: Conn, buyer_id: uuid.UUID) -> CapCounters | None:
    row = await conn.fetchrow(
        "SELECT cap_day_window, cap_day_count, cap_hour_window, cap_hour_count "
        "FROM buyers WHERE id = $1",
        buyer_id,
    )
    return CapCounters(**row) if row else None


@dataclass(frozen=True, slots=True)
class Sale:
    """Another sale of the same received lead (multi-sell): the lead it was sold from,
    or a further share of it."""

    lead_id: uuid.UUID
    buyer_id: uuid.UUID | None
    buyer_name: str | None
    price_cents: int | None
    status: str
    original: bool


_OTHER_SALES = """
WITH origin AS (SELECT coalesce(sold_from_lead_id, id) AS id FROM leads WHERE id = $1)
SELECT l.id, l.buyer_id, b.name, l.price_cents, l.status::text, l.sold_from_lead_id IS NULL
FROM leads l JOIN origin o ON l.id = o.id OR l.sold_from_lead_id = o.id
LEFT JOIN buyers b ON b.id = l.buyer_id
WHERE l.id <> $1
ORDER BY l.sold_from_lead_id NULLS FIRST, l.price_cents DESC NULLS LAST, b.name, l.id
"""


async def other_sales(conn: Conn, lead_id: uuid.UUID) -> list[Sale]:
    return [Sale(*r) for r in await conn.fetch(_OTHER_SALES, lead_id)]
