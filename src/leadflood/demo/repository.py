"""SQL for the demo's summary of where each posted lead ended."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

_SUMMARY = text("""
SELECT l.id, l.first_name, l.postal_code, l.status::text AS status, l.rejection_reasons,
       b.name AS buyer, d.status::text AS delivery, d.attempt_count,
       (SELECT rd.outcome FROM routing_decisions rd WHERE rd.lead_id = l.id
        ORDER BY rd.decided_at DESC LIMIT 1) AS routing
FROM leads l
LEFT JOIN buyers b ON b.id = l.buyer_id
LEFT JOIN deliveries d ON d.lead_id = l.id
WHERE l.id = ANY(:ids)
""")


async def lead_summaries(conn: AsyncConnection, ids: list[uuid.UUID]) -> dict[str, Any]:
    rows = (await conn.execute(_SUMMARY, {"ids": ids})).mappings().all()
    return {str(r["id"]): dict(r) for r in rows}
