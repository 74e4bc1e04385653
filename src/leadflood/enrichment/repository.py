"""SQL of enrichment runs and the lead fields enrichment writes (asyncpg)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import orjson

from leadflood.core.uow import Conn
from leadflood.prospecting.repository import LEAD_COLUMNS, Prospect


async def insert_run(conn: Conn, lead_id: uuid.UUID, provider: str, overwrite: bool) -> uuid.UUID:
    return await conn.fetchval(
        "INSERT INTO outreach.enrichment_runs (lead_id, provider, overwrite) "
        "VALUES ($1, $2, $3) RETURNING id",
        lead_id,
        provider,
        overwrite,
    )


async def pending_enrichments(conn: Conn, lead_ids: list[uuid.UUID]) -> set[uuid.UUID]:
    rows = await conn.fetch(
        "SELECT DISTINCT lead_id FROM outreach.enrichment_runs "
        "WHERE lead_id = ANY ($1::uuid[]) AND status IN ('queued', 'running')",
        lead_ids,
    )
    return {r["lead_id"] for r in rows}


async def set_run_job(conn: Conn, run_id: uuid.UUID, job_id: uuid.UUID) -> None:
    await conn.execute(
        "UPDATE outreach.enrichment_runs SET job_id = $2 WHERE id = $1", run_id, job_id
    )


async def delete_run(conn: Conn, run_id: uuid.UUID) -> None:
    await conn.execute("DELETE FROM outreach.enrichment_runs WHERE id = $1", run_id)


@dataclass(frozen=True, slots=True, kw_only=True)
class Run:
    id: uuid.UUID
    lead_id: uuid.UUID
    provider: str
    overwrite: bool
    status: str
    outcome: str | None
    changes: dict[str, Any] | None
    error: str | None
    job_id: uuid.UUID | None


async def get_run(conn: Conn, run_id: uuid.UUID) -> Run | None:
    row = await conn.fetchrow(
        "SELECT id, lead_id, provider, overwrite, status, outcome, changes, error, job_id "
        "FROM outreach.enrichment_runs WHERE id = $1",
        run_id,
    )
    return Run(**row) if row else None


async def mark_running(conn: Conn, run_id: uuid.UUID, lead_id: uuid.UUID) -> None:
    await conn.execute(
        "UPDATE outreach.enrichment_runs SET status = 'running' WHERE id = $1", run_id
    )
    await conn.execute(
        "UPDATE outreach.leads SET status = 'processing', error = NULL WHERE id = $1", lead_id
    )


async def lock_lead(conn: Conn, lead_id: uuid.UUID) -> Prospect | None:
    row = await conn.fetchrow(
        f"SELECT {LEAD_COLUMNS} FROM outreach.leads WHERE id = $1 FOR UPDATE", lead_id
    )
    return Prospect(**row) if row else None


async def email_owner(conn: Conn, email: str) -> uuid.UUID | None:
    return await conn.fetchval("SELECT id FROM outreach.leads WHERE normalized_email = $1", email)


async def apply(
    conn: Conn,
    lead_id: uuid.UUID,
    values: dict[str, Any],
    enrichment_data: dict[str, Any],
) -> None:
    columns = [*values, "enrichment_data"]
    sets = ", ".join(
        f"{c} = ${i}::jsonb" if c == "enrichment_data" else f"{c} = ${i}"
        for i, c in enumerate(columns, start=2)
    )
    await conn.execute(
        f"UPDATE outreach.leads SET {sets}, status = 'enriched', enriched_at = now(), error = NULL "
        "WHERE id = $1",
        lead_id,
        *values.values(),
        orjson.dumps(enrichment_data, default=str).decode(),
    )


async def mark_opted_out(conn: Conn, lead_id: uuid.UUID) -> None:
    # The person asked not to be processed: keep nothing the provider had on them.
    await conn.execute(
        "UPDATE outreach.leads SET do_not_contact = true, status = 'enriched', "
        "enriched_at = now(), error = NULL WHERE id = $1",
        lead_id,
    )


async def finish_run(conn: Conn, run_id: uuid.UUID, outcome: str, changes: dict[str, Any]) -> None:
    await conn.execute(
        "UPDATE outreach.enrichment_runs SET status = 'completed', outcome = $2, "
        "changes = $3::jsonb, finished_at = now(), error = NULL WHERE id = $1",
        run_id,
        outcome,
        orjson.dumps(changes, default=str).decode(),
    )


async def fail_run(conn: Conn, run_id: uuid.UUID, lead_id: uuid.UUID, error: str) -> None:
    await conn.execute(
        "UPDATE outreach.enrichment_runs SET status = 'failed', error = $2, finished_at = now() "
        "WHERE id = $1",
        run_id,
        error[:2000],
    )
    await conn.execute(
        "UPDATE outreach.leads SET status = 'failed', error = $2 WHERE id = $1",
        lead_id,
        error[:2000],
    )


async def reopen_run(conn: Conn, run_id: uuid.UUID) -> None:
    await conn.execute(
        "UPDATE outreach.enrichment_runs SET status = 'queued', error = NULL, finished_at = NULL "
        "WHERE id = $1 AND status = 'failed'",
        run_id,
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class ProviderQuota:
    provider: str
    exhausted_at: datetime
    retry_at: datetime
    message: str


async def quota_exhausted(conn: Conn, provider: str) -> ProviderQuota | None:
    """The provider's used-up quota, while it stands (until its retry time)."""
    row = await conn.fetchrow(
        "SELECT provider, exhausted_at, retry_at, message FROM outreach.provider_quotas "
        "WHERE provider = $1 AND retry_at > now()",
        provider,
    )
    return ProviderQuota(**row) if row else None


async def mark_quota_exhausted(
    conn: Conn, provider: str, retry_after: timedelta, message: str
) -> None:
    await conn.execute(
        "INSERT INTO outreach.provider_quotas (provider, exhausted_at, retry_at, message) "
        "VALUES ($1, now(), now() + $2::interval, $3) ON CONFLICT (provider) DO UPDATE SET "
        "retry_at = EXCLUDED.retry_at, message = EXCLUDED.message, "
        "exhausted_at = CASE WHEN provider_quotas.retry_at > now() "
        "                    THEN provider_quotas.exhausted_at ELSE now() END",
        provider,
        retry_after,
        message[:1000],
    )


async def clear_quota(conn: Conn, provider: str) -> None:
    await conn.execute("DELETE FROM outreach.provider_quotas WHERE provider = $1", provider)


async def list_quotas(conn: Conn) -> list[ProviderQuota]:
    rows = await conn.fetch(
        "SELECT provider, exhausted_at, retry_at, message FROM outreach.provider_quotas "
        "WHERE retry_at > now() ORDER BY provider"
    )
    return [ProviderQuota(**r) for r in rows]
