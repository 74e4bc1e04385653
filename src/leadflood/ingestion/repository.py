"""All SQL of ingestion, on asyncpg directly (hot path, decision 0003)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg

from leadflood.core.jobs import VALIDATE_LEAD
from leadflood.core.queue import fused_enqueue_ctes, jobs_written
from leadflood.core.tracing import job_headers_json
from leadflood.core.uow import Conn


@dataclass(frozen=True)
class SourceBinding:
    source_id: uuid.UUID
    offer_id: uuid.UUID
    market_id: uuid.UUID
    vertical_id: uuid.UUID
    country: str
    api_key_hash: str | None
    hostname: str | None = None
    path_prefix: str | None = None


_SOURCE_SELECT = """
SELECT s.id AS source_id, s.offer_id, o.market_id, o.vertical_id, m.country,
       s.api_key_hash, s.hostname, s.path_prefix
FROM sources s
JOIN offers o ON o.id = s.offer_id
JOIN markets m ON m.id = o.market_id
WHERE s.active AND {where}
"""
_BY_ID = _SOURCE_SELECT.format(where="s.id = $1")
_BY_KEY = _SOURCE_SELECT.format(where="s.source_key = $1")
_BY_HOST = _SOURCE_SELECT.format(where="s.hostname = $1") + " ORDER BY s.id"


def _binding(row: asyncpg.Record) -> SourceBinding:
    return SourceBinding(**dict(row))


async def source_by_id(conn: Conn, source_id: uuid.UUID) -> SourceBinding | None:
    row = await conn.fetchrow(_BY_ID, source_id)
    return _binding(row) if row else None


async def source_by_key(conn: Conn, key: str) -> SourceBinding | None:
    row = await conn.fetchrow(_BY_KEY, key)
    return _binding(row) if row else None


async def sources_by_host(conn: Conn, host: str) -> list[SourceBinding]:
    return [_binding(r) for r in await conn.fetch(_BY_HOST, host)]


LEAD_COLUMNS = (
    "source_id",
    "offer_id",
    "market_id",
    "vertical_id",
    "idempotency_key",
    "idempotency_key_derived",
    "first_name",
    "last_name",
    "email",
    "normalized_email",
    "phone",
    "normalized_phone",
    "address",
    "city",
    "state",
    "postal_code",
    "consent",
    "consent_text",
    "consent_certificate_url",
    "ip",
    "user_agent",
    "raw_payload",
)
_CASTS = {"raw_payload": "::jsonb", "ip": "::inet"}
_RETURNING = (
    "id AS lead_id, source_id, offer_id, market_id, vertical_id, idempotency_key, "
    "idempotency_key_derived, status::text AS status, rejection_reasons, routed_at, delivered_at"
)
# One statement, one implicit transaction: the lead and its validate_lead job
# commit together, or (on an idempotency conflict) neither is written.
_INSERT_AND_ENQUEUE = (
    "WITH new_lead AS ("
    f"INSERT INTO leads ({', '.join(LEAD_COLUMNS)}) VALUES ("
    + ", ".join(f"${i}{_CASTS.get(c, '')}" for i, c in enumerate(LEAD_COLUMNS, start=1))
    + f") ON CONFLICT (source_id, idempotency_key) DO NOTHING RETURNING {_RETURNING}),"
    + fused_enqueue_ctes(VALIDATE_LEAD, "new_lead", "lead_id", headers=f"${len(LEAD_COLUMNS) + 1}")
    + " SELECT * FROM new_lead"
)
_BY_IDEMPOTENCY = f"SELECT {_RETURNING} FROM leads WHERE source_id = $1 AND idempotency_key = $2"
_LEAD_BY_ID = f"SELECT {_RETURNING} FROM leads WHERE id = $1"
_SOURCE_KEY_HASH = "SELECT api_key_hash FROM sources WHERE id = $1"


@dataclass(frozen=True, slots=True)
class AcceptedLead:
    """What a source is told about its lead (the columns of _RETURNING, in order)."""

    lead_id: uuid.UUID
    source_id: uuid.UUID
    offer_id: uuid.UUID
    market_id: uuid.UUID
    vertical_id: uuid.UUID
    idempotency_key: str
    idempotency_key_derived: bool
    status: str
    rejection_reasons: list[str] | None
    routed_at: datetime | None
    delivered_at: datetime | None


def _lead(row: Any) -> AcceptedLead | None:
    return AcceptedLead(*row) if row else None


async def insert_lead_and_enqueue(conn: Conn, values: dict[str, Any]) -> AcceptedLead | None:
    """Insert unless (source_id, idempotency_key) exists; None when it already did."""
    inserted = _lead(
        await conn.fetchrow(
            _INSERT_AND_ENQUEUE, *(values[c] for c in LEAD_COLUMNS), job_headers_json()
        )
    )
    if inserted is not None:
        jobs_written(conn)
    return inserted


async def lead_by_idempotency(conn: Conn, source_id: uuid.UUID, key: str) -> AcceptedLead | None:
    return _lead(await conn.fetchrow(_BY_IDEMPOTENCY, source_id, key))


async def lead_by_id(conn: Conn, lead_id: uuid.UUID) -> AcceptedLead | None:
    return _lead(await conn.fetchrow(_LEAD_BY_ID, lead_id))


async def source_key_hash(conn: Conn, source_id: uuid.UUID) -> str | None:
    return await conn.fetchval(_SOURCE_KEY_HASH, source_id)
