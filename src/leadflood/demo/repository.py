"""SQL of the demo: whether it was seeded, and where each posted lead ended."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from leadflood.core.uow import Conn


@dataclass(frozen=True, slots=True, kw_only=True)
class LeadSummary:
    id: uuid.UUID
    first_name: str | None
    postal_code: str | None
    status: str
    rejection_reasons: list[str] | None
    buyer: str | None
    delivery: str | None
    attempt_count: int | None
    routing: str | None


_SUMMARY = """
SELECT l.id, l.first_name, l.postal_code, l.status::text AS status, l.rejection_reasons,
       b.name AS buyer, d.status::text AS delivery, d.attempt_count,
       (SELECT rd.outcome FROM routing_decisions rd WHERE rd.lead_id = l.id
        ORDER BY rd.decided_at DESC LIMIT 1) AS routing
FROM leads l
LEFT JOIN buyers b ON b.id = l.buyer_id
LEFT JOIN deliveries d ON d.lead_id = l.id
WHERE l.id = ANY($1::uuid[])
"""


async def lead_summaries(conn: Conn, ids: list[uuid.UUID]) -> dict[str, LeadSummary]:
    rows = await conn.fetch(_SUMMARY, ids)
    return {str(r["id"]): LeadSummary(**r) for r in rows}


async def market_exists(conn: Conn, slug: str) -> bool:
    return bool(await conn.fetchval("SELECT 1 FROM markets WHERE slug = $1", slug))


async def source_ids(conn: Conn) -> dict[str, uuid.UUID]:
    """Each source's id by its source key."""
    rows = await conn.fetch("SELECT source_key, id FROM sources")
    return {r["source_key"]: r["id"] for r in rows}


async def any_user(conn: Conn) -> bool:
    return bool(await conn.fetchval("SELECT 1 FROM users LIMIT 1"))
