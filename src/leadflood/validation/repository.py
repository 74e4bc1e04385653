"""All SQL of validation (asyncpg, hot path of the pipeline)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from leadflood.core.jobs import ROUTE_LEAD
from leadflood.core.queue import fused_enqueue_ctes, jobs_written
from leadflood.core.tracing import job_headers_json
from leadflood.core.uow import Conn
from leadflood.ingestion.lead_fields import LeadContact

_LOAD = """
SELECT l.id, l.status::text AS status, l.offer_id, l.vertical_id, l.created_at,
       l.first_name, l.last_name, l.email, l.phone, l.address, l.city, l.state, l.postal_code,
       l.consent, l.consent_text, l.consent_certificate_url,
       l.normalized_email, l.normalized_phone, vp.rules, m.country
FROM leads l
JOIN offers o ON o.id = l.offer_id
JOIN validation_policies vp ON vp.id = o.validation_policy_id
JOIN markets m ON m.id = l.market_id
WHERE l.id = $1
"""

_SCOPE_COLUMN = {"offer": "offer_id", "vertical": "vertical_id", "global": None}


def _duplicate_query(
    lead: LeadToValidate, scope: str, match: tuple[str, ...], window_hours: int
) -> tuple[str, list[Any]]:
    """Earliest earlier, non-rejected lead in the window and scope matching any field."""
    args: list[Any] = [lead.id, lead.created_at, timedelta(hours=window_hours)]

    def param(value: Any) -> str:
        args.append(value)
        return f"${len(args)}"

    matches = " OR ".join(f"p.{field} = {param(lead.field(field))}" for field in match)
    column = _SCOPE_COLUMN[scope]
    scope_sql = f"AND p.{column} = {param(lead.field(column))}" if column else ""
    sql = f"""
    SELECT p.id FROM leads p
    WHERE p.id <> $1
      AND p.status <> 'rejected'
      AND (p.created_at, p.id) < ($2, $1)
      AND p.created_at >= $2 - $3::interval
      AND ({matches})
      {scope_sql}
    ORDER BY p.created_at, p.id
    LIMIT 1
    """
    return sql, args


_VALIDATE = (
    "WITH moved AS ("
    " UPDATE leads SET status = 'validated', validated_at = now(), rejection_reasons = '{}'"
    " WHERE id = $1 AND status = 'received' RETURNING id),"
    + fused_enqueue_ctes(ROUTE_LEAD, "moved", "id", headers="$2")
    + " SELECT count(*) FROM moved"
)
_REJECT = """
UPDATE leads SET status = 'rejected', rejection_reasons = $2, duplicate_of_lead_id = $3,
       billing_status = 'non_billable', validated_at = now()
WHERE id = $1 AND status = 'received'
"""
_STATUS = "SELECT status::text FROM leads WHERE id = $1"


@dataclass(frozen=True, slots=True, kw_only=True)
class LeadToValidate(LeadContact):
    """A received lead with its policy's rules (the columns of _LOAD)."""

    id: uuid.UUID
    status: str
    offer_id: uuid.UUID
    vertical_id: uuid.UUID
    created_at: datetime
    normalized_email: str | None
    normalized_phone: str | None
    rules: dict[str, Any]
    country: str

    def field(self, name: str) -> Any:
        """A field named by the policy (required fields, duplicate match, scope)."""
        return getattr(self, name, None)


async def load(conn: Conn, lead_id: uuid.UUID) -> LeadToValidate | None:
    row = await conn.fetchrow(_LOAD, lead_id)
    return LeadToValidate(**row) if row else None


async def earliest_duplicate(
    conn: Conn,
    lead: LeadToValidate,
    *,
    scope: str,
    match: tuple[str, ...],
    window_hours: int,
) -> uuid.UUID | None:
    usable = tuple(f for f in match if lead.field(f))
    if not usable:
        return None
    sql, args = _duplicate_query(lead, scope, usable, window_hours)
    return await conn.fetchval(sql, *args)


async def mark_validated(conn: Conn, lead_id: uuid.UUID) -> bool:
    """Guarded received → validated, with its route_lead job in the same statement."""
    moved = bool(await conn.fetchval(_VALIDATE, lead_id, job_headers_json()))
    if moved:
        jobs_written(conn)
    return moved


async def mark_rejected(
    conn: Conn,
    lead_id: uuid.UUID,
    reasons: list[str],
    duplicate_of: uuid.UUID | None,
) -> bool:
    return (await conn.execute(_REJECT, lead_id, reasons, duplicate_of)) == "UPDATE 1"


async def current_status(conn: Conn, lead_id: uuid.UUID) -> str | None:
    return await conn.fetchval(_STATUS, lead_id)
