"""SQL of the admin views: entity lists, lead search and a lead's full story."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from leadflood.admin.resources import Resource
from leadflood.ingestion.normalize import normalize_phone


async def list_rows(
    conn: AsyncConnection,
    resource: Resource,
    filters: dict[str, Any],
    *,
    limit: int,
    offset: int,
) -> tuple[list[dict[str, Any]], int]:
    # Column names come from the resource declaration, never from the request.
    where = " AND ".join(f"{column} = :{column}" for column in filters) or "true"
    params = {**filters, "_limit": limit, "_offset": offset}
    rows = await conn.execute(
        text(
            f"SELECT *, count(*) OVER () AS _total FROM {resource.table} WHERE {where} "
            f"ORDER BY {resource.order_by} LIMIT :_limit OFFSET :_offset"
        ),
        params,
    )
    items = [dict(r) for r in rows.mappings()]
    total = items[0].pop("_total") if items else 0
    for item in items[1:]:
        item.pop("_total")
    return items, total


async def delete_row(conn: AsyncConnection, table: str, row_id: uuid.UUID) -> bool:
    result = await conn.execute(text(f"DELETE FROM {table} WHERE id = :id"), {"id": row_id})
    return result.rowcount == 1


async def existing_postal_codes(
    conn: AsyncConnection, buyer_id: uuid.UUID, market_id: uuid.UUID
) -> set[tuple[str | None, str | None]]:
    rows = await conn.execute(
        text(
            "SELECT postal_code, city FROM buyer_service_areas "
            "WHERE buyer_id = :buyer AND market_id = :market"
        ),
        {"buyer": buyer_id, "market": market_id},
    )
    return {(r.postal_code, r.city) for r in rows}


async def delete_service_areas(
    conn: AsyncConnection, buyer_id: uuid.UUID, market_id: uuid.UUID
) -> int:
    result = await conn.execute(
        text("DELETE FROM buyer_service_areas WHERE buyer_id = :buyer AND market_id = :market"),
        {"buyer": buyer_id, "market": market_id},
    )
    return result.rowcount


async def insert_service_areas(
    conn: AsyncConnection,
    buyer_id: uuid.UUID,
    market_id: uuid.UUID,
    rows: list[tuple[str | None, str | None]],
) -> None:
    await conn.execute(
        text(
            "INSERT INTO buyer_service_areas (buyer_id, market_id, postal_code, city) "
            "SELECT :buyer, :market, p, c FROM unnest(CAST(:postal AS text[]), "
            "                                         CAST(:city AS text[])) AS t(p, c)"
        ),
        {
            "buyer": buyer_id,
            "market": market_id,
            "postal": [p for p, _ in rows],
            "city": [c for _, c in rows],
        },
    )


_LEAD_LIST_COLUMNS = """
l.id, l.status::text AS status, l.created_at, l.first_name, l.last_name, l.email, l.phone,
l.postal_code, l.city, l.state, l.price_cents, l.billing_status::text AS billing_status,
l.rejection_reasons, l.source_id, s.name AS source_name, l.offer_id, o.slug AS offer_slug,
o.name AS offer_name, l.buyer_id, b.name AS buyer_name
"""


async def search_leads(
    conn: AsyncConnection,
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
) -> list[dict[str, Any]]:
    clauses = ["true"]
    params: dict[str, Any] = {"limit": limit}
    if status:
        clauses.append("l.status = CAST(:status AS lead_status)")
        params["status"] = status
    for column, value in (("offer_id", offer_id), ("source_id", source_id), ("buyer_id", buyer_id)):
        if value is not None:
            clauses.append(f"l.{column} = :{column}")
            params[column] = value
    if query:
        # Exact on the normalized forms (indexed), prefix on names.
        clauses.append(
            "(l.normalized_email = lower(:q) OR l.normalized_phone = :q_phone "
            " OR l.id::text = :q OR l.last_name ILIKE :q_prefix OR l.first_name ILIKE :q_prefix)"
        )
        digits = "".join(ch for ch in query if ch.isdigit())
        # A national number is read as US; a number typed with + and country code as-is.
        phone = normalize_phone(query, "US") if len(digits) >= 7 else None
        params.update(
            q=query.strip(),
            q_phone=phone or "",
            q_prefix=query.strip().replace("%", r"\%").replace("_", r"\_") + "%",
        )
    if created_from is not None:
        clauses.append("l.created_at >= :created_from")
        params["created_from"] = created_from
    if created_to is not None:
        clauses.append("l.created_at < :created_to")
        params["created_to"] = created_to
    if after is not None:
        clauses.append("(l.created_at, l.id) < (:after_at, :after_id)")
        params.update(after_at=after[0], after_id=after[1])
    rows = await conn.execute(
        text(
            f"SELECT {_LEAD_LIST_COLUMNS} FROM leads l "
            "JOIN sources s ON s.id = l.source_id JOIN offers o ON o.id = l.offer_id "
            "LEFT JOIN buyers b ON b.id = l.buyer_id "
            f"WHERE {' AND '.join(clauses)} "
            "ORDER BY l.created_at DESC, l.id DESC LIMIT :limit"
        ),
        params,
    )
    return [dict(r) for r in rows.mappings()]


async def lead_detail(conn: AsyncConnection, lead_id: uuid.UUID) -> dict[str, Any] | None:
    row = await conn.execute(
        text(
            "SELECT l.*, l.status::text AS status, l.billing_status::text AS billing_status, "
            "       host(l.ip) AS ip, s.name AS source_name, o.slug AS offer_slug, "
            "       o.name AS offer_name, m.slug AS market_slug, m.name AS market_name, "
            "       v.slug AS vertical_slug, v.name AS vertical_name, b.name AS buyer_name "
            "FROM leads l JOIN sources s ON s.id = l.source_id "
            "JOIN offers o ON o.id = l.offer_id JOIN markets m ON m.id = l.market_id "
            "JOIN verticals v ON v.id = l.vertical_id LEFT JOIN buyers b ON b.id = l.buyer_id "
            "WHERE l.id = :id"
        ),
        {"id": lead_id},
    )
    found = row.mappings().first()
    return dict(found) if found else None


async def buyer_names(conn: AsyncConnection, ids: list[uuid.UUID]) -> dict[uuid.UUID, str]:
    if not ids:
        return {}
    rows = await conn.execute(
        text("SELECT id, name FROM buyers WHERE id = ANY(CAST(:ids AS uuid[]))"), {"ids": ids}
    )
    return {r.id: r.name for r in rows}


async def option_rows(conn: AsyncConnection, table: str, label: str) -> list[dict[str, Any]]:
    rows = await conn.execute(text(f"SELECT id, {label} AS label FROM {table} ORDER BY {label}"))
    return [dict(r) for r in rows.mappings()]


_FUNNEL = """
SELECT count(*) AS received,
       count(*) FILTER (WHERE validated_at IS NOT NULL AND status <> 'rejected') AS validated,
       count(*) FILTER (WHERE status = 'rejected') AS rejected,
       count(*) FILTER (WHERE routed_at IS NOT NULL) AS routed,
       count(*) FILTER (WHERE status = 'validated') AS unrouted,
       count(*) FILTER (WHERE status IN ('delivered', 'returned')) AS delivered,
       count(*) FILTER (WHERE status = 'delivery_failed') AS delivery_failed,
       count(*) FILTER (WHERE status = 'unsold') AS unsold
FROM leads WHERE created_at >= :since AND created_at < :until
"""

_REJECTION_REASONS = """
SELECT reason, count(*) AS n FROM leads, unnest(rejection_reasons) AS reason
WHERE status = 'rejected' AND created_at >= :since AND created_at < :until
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
WHERE l.status = 'validated' AND l.created_at >= :since AND l.created_at < :until
GROUP BY d.outcome ORDER BY n DESC
"""

_DAILY = """
SELECT (created_at AT TIME ZONE :tz)::date AS day,
       count(*) AS received,
       count(*) FILTER (WHERE status = 'rejected') AS rejected,
       count(*) FILTER (WHERE status IN ('delivered', 'returned')) AS delivered,
       count(*) FILTER (WHERE status = 'validated') AS unrouted
FROM leads WHERE created_at >= :since
GROUP BY 1 ORDER BY 1
"""


async def funnel(conn: AsyncConnection, since: datetime, until: datetime) -> dict[str, Any]:
    params = {"since": since, "until": until}
    counts = dict((await conn.execute(text(_FUNNEL), params)).mappings().one())
    rejected = (await conn.execute(text(_REJECTION_REASONS), params)).mappings().all()
    unrouted = (await conn.execute(text(_UNROUTED_REASONS), params)).mappings().all()
    return {
        **counts,
        "rejection_reasons": [dict(r) for r in rejected],
        "unrouted_reasons": [dict(r) for r in unrouted],
    }


async def daily_counts(conn: AsyncConnection, since: datetime, tz: str) -> list[dict[str, Any]]:
    rows = await conn.execute(text(_DAILY), {"since": since, "tz": tz})
    return [dict(r) for r in rows.mappings()]


async def list_deliveries(
    conn: AsyncConnection,
    *,
    status: str | None,
    buyer_id: uuid.UUID | None,
    limit: int,
    offset: int,
) -> list[dict[str, Any]]:
    rows = await conn.execute(
        text(
            "SELECT d.id, d.lead_id, d.buyer_id, b.name AS buyer_name, d.channel::text AS channel, "
            "       d.status::text AS status, d.attempt_count, d.next_attempt_at, d.last_error, "
            "       d.delivered_at, d.created_at, l.status::text AS lead_status "
            "FROM deliveries d JOIN buyers b ON b.id = d.buyer_id JOIN leads l ON l.id = d.lead_id "
            "WHERE (CAST(:status AS text) IS NULL OR d.status::text = :status) "
            "  AND (CAST(:buyer AS uuid) IS NULL OR d.buyer_id = :buyer) "
            "ORDER BY d.created_at DESC, d.id DESC LIMIT :limit OFFSET :offset"
        ),
        {"status": status, "buyer": buyer_id, "limit": limit, "offset": offset},
    )
    return [dict(r) for r in rows.mappings()]
