"""All SQL of ICPs, search runs and results, and outreach leads (asyncpg)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson

from leadflood.core.uow import Conn

ICP_COLUMNS = (
    "id, name, description, titles, seniorities, locations, industries, company_sizes, "
    "keywords, domains, created_by, created_at, updated_at"
)
LEAD_COLUMNS = (
    "id, icp_id, status, email, normalized_email, email_status, first_name, last_name, title, "
    "seniority, phone, linkedin_url, company, company_domain, company_size, industry, city, "
    "state, country, source, source_ref, do_not_contact, enrichment_data, error, enriched_at, "
    "created_by, created_at, updated_at"
)
RUN_COLUMNS = (
    "id, icp_id, provider, params, dedupe_key, status, job_id, results_count, leads_created, "
    "leads_updated, pages_fetched, total_available, error, started_at, finished_at, created_by, "
    "created_at, updated_at"
)


@dataclass(frozen=True, slots=True, kw_only=True)
class Icp:
    id: uuid.UUID
    name: str
    description: str | None
    titles: list[str]
    seniorities: list[str]
    locations: list[str]
    industries: list[str]
    company_sizes: list[str]
    keywords: str | None
    domains: list[str]
    created_by: uuid.UUID | None
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True, slots=True, kw_only=True)
class IcpListItem(Icp):
    lead_count: int


@dataclass(frozen=True, slots=True, kw_only=True)
class SearchRun:
    id: uuid.UUID
    icp_id: uuid.UUID
    provider: str
    params: dict[str, Any]
    dedupe_key: str | None
    status: str
    job_id: uuid.UUID | None
    results_count: int
    leads_created: int
    leads_updated: int
    pages_fetched: int
    total_available: int | None
    error: str | None
    started_at: datetime | None
    finished_at: datetime | None
    created_by: uuid.UUID | None
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True, slots=True, kw_only=True)
class Prospect:
    """An outreach lead (the columns of LEAD_COLUMNS)."""

    id: uuid.UUID
    icp_id: uuid.UUID | None
    status: str
    email: str | None
    normalized_email: str | None
    email_status: str | None
    first_name: str | None
    last_name: str | None
    title: str | None
    seniority: str | None
    phone: str | None
    linkedin_url: str | None
    company: str | None
    company_domain: str | None
    company_size: str | None
    industry: str | None
    city: str | None
    state: str | None
    country: str | None
    source: str
    source_ref: str | None
    do_not_contact: bool
    enrichment_data: dict[str, Any]
    error: str | None
    enriched_at: datetime | None
    created_by: uuid.UUID | None
    created_at: datetime
    updated_at: datetime

    def field(self, name: str) -> Any:
        """A field named at run time (the fields a search or an enrichment fills)."""
        return getattr(self, name, None)


@dataclass(frozen=True, slots=True, kw_only=True)
class ProspectCreated(Prospect):
    """A lead just created, with the job of the enrichment it asked for, if any."""

    enrichment_job_id: uuid.UUID | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class EnrichmentRun:
    id: uuid.UUID
    provider: str
    overwrite: bool
    status: str
    outcome: str | None
    changes: dict[str, Any] | None
    error: str | None
    job_id: uuid.UUID | None
    created_at: datetime
    finished_at: datetime | None


@dataclass(frozen=True, slots=True, kw_only=True)
class FoundIn:
    run_id: uuid.UUID
    icp_id: uuid.UUID
    provider: str
    created_at: datetime
    outcome: str | None


@dataclass(frozen=True, slots=True, kw_only=True)
class LeadJob:
    id: uuid.UUID
    type: str
    status: str
    attempts: int
    error: str | None
    created_at: datetime
    finished_at: datetime | None


@dataclass(frozen=True, slots=True, kw_only=True)
class LeadHistory:
    """What happened to an outreach lead: its enrichments, the searches that found it, its
    jobs."""

    enrichment_runs: list[EnrichmentRun]
    search_results: list[FoundIn]
    jobs: list[LeadJob]


@dataclass(frozen=True, slots=True, kw_only=True)
class ProspectDetail(Prospect):
    # A LeadHistory's fields (slotted dataclasses cannot inherit from two rows).
    enrichment_runs: list[EnrichmentRun]
    search_results: list[FoundIn]
    jobs: list[LeadJob]


def _one(kind: Any, record: Any) -> Any:
    return kind(**record) if record is not None else None


# ---- ICPs -------------------------------------------------------------------------------


async def insert_icp(conn: Conn, values: dict[str, Any], created_by: uuid.UUID | None) -> Icp:
    columns = [*values, "created_by"]
    placeholders = ", ".join(f"${i}" for i in range(1, len(columns) + 1))
    row = await conn.fetchrow(
        f"INSERT INTO outreach.icps ({', '.join(columns)}) VALUES ({placeholders}) "
        f"RETURNING {ICP_COLUMNS}",
        *values.values(),
        created_by,
    )
    return Icp(**row)


async def replace_icp(conn: Conn, icp_id: uuid.UUID, values: dict[str, Any]) -> Icp | None:
    sets = ", ".join(f"{c} = ${i}" for i, c in enumerate(values, start=2))
    row = await conn.fetchrow(
        f"UPDATE outreach.icps SET {sets} WHERE id = $1 RETURNING {ICP_COLUMNS}",
        icp_id,
        *values.values(),
    )
    return _one(Icp, row)


async def get_icp(conn: Conn, icp_id: uuid.UUID) -> Icp | None:
    row = await conn.fetchrow(f"SELECT {ICP_COLUMNS} FROM outreach.icps WHERE id = $1", icp_id)
    return _one(Icp, row)


async def list_icps(conn: Conn) -> list[IcpListItem]:
    rows = await conn.fetch(
        f"SELECT {ICP_COLUMNS}, "
        "  (SELECT count(*) FROM outreach.leads l WHERE l.icp_id = i.id) AS lead_count "
        "FROM outreach.icps i ORDER BY name, id"
    )
    return [IcpListItem(**r) for r in rows]


async def delete_icp(conn: Conn, icp_id: uuid.UUID) -> bool:
    return await conn.execute("DELETE FROM outreach.icps WHERE id = $1", icp_id) == "DELETE 1"


# ---- search runs --------------------------------------------------------------------------


async def insert_run(
    conn: Conn,
    *,
    icp_id: uuid.UUID,
    provider: str,
    params: dict[str, Any],
    dedupe_key: str,
    created_by: uuid.UUID | None,
) -> uuid.UUID | None:
    """None when a run with this dedupe key exists (see retire_failed_run)."""
    return await conn.fetchval(
        "INSERT INTO outreach.search_runs (icp_id, provider, params, dedupe_key, created_by) "
        "VALUES ($1, $2, $3::jsonb, $4, $5) ON CONFLICT (dedupe_key) DO NOTHING RETURNING id",
        icp_id,
        provider,
        orjson.dumps(params).decode(),
        dedupe_key,
        created_by,
    )


async def run_by_dedupe_key(conn: Conn, dedupe_key: str) -> SearchRun | None:
    return _one(
        SearchRun,
        await conn.fetchrow(
            f"SELECT {RUN_COLUMNS} FROM outreach.search_runs WHERE dedupe_key = $1 FOR UPDATE",
            dedupe_key,
        ),
    )


async def retire_failed_run(conn: Conn, run_id: uuid.UUID) -> None:
    """A failed run must not block today's retry: free its dedupe key."""
    await conn.execute(
        "UPDATE outreach.search_runs SET dedupe_key = dedupe_key || ':failed:' || id::text "
        "WHERE id = $1",
        run_id,
    )


async def set_run_job(conn: Conn, run_id: uuid.UUID, job_id: uuid.UUID) -> None:
    await conn.execute("UPDATE outreach.search_runs SET job_id = $2 WHERE id = $1", run_id, job_id)


async def get_run(conn: Conn, run_id: uuid.UUID) -> SearchRun | None:
    return _one(
        SearchRun,
        await conn.fetchrow(
            f"SELECT {RUN_COLUMNS} FROM outreach.search_runs WHERE id = $1", run_id
        ),
    )


async def list_runs(conn: Conn, icp_id: uuid.UUID, limit: int = 20) -> list[SearchRun]:
    rows = await conn.fetch(
        f"SELECT {RUN_COLUMNS} FROM outreach.search_runs WHERE icp_id = $1 "
        "ORDER BY created_at DESC LIMIT $2",
        icp_id,
        limit,
    )
    return [SearchRun(**r) for r in rows]


async def mark_run_running(conn: Conn, run_id: uuid.UUID) -> None:
    await conn.execute(
        "UPDATE outreach.search_runs SET status = 'running', error = NULL, "
        "started_at = coalesce(started_at, now()) "
        "WHERE id = $1 AND status IN ('queued', 'running')",
        run_id,
    )


async def finish_run(conn: Conn, run_id: uuid.UUID, *, pages: int, total: int | None) -> SearchRun:
    """Counters come from the stored results, so a retried run never double counts."""
    returning = ", ".join("r." + c for c in RUN_COLUMNS.split(", "))
    row = await conn.fetchrow(
        "WITH counts AS ("
        "  SELECT count(*) AS results,"
        "         count(*) FILTER (WHERE outcome = 'created') AS created,"
        "         count(*) FILTER (WHERE outcome = 'updated') AS updated"
        "  FROM outreach.search_results WHERE run_id = $1) "
        "UPDATE outreach.search_runs r SET status = 'completed', finished_at = now(), "
        "  results_count = c.results, leads_created = c.created, leads_updated = c.updated, "
        "  pages_fetched = $2, total_available = $3, error = NULL "
        f"FROM counts c WHERE r.id = $1 RETURNING {returning}",
        run_id,
        pages,
        total,
    )
    return SearchRun(**row)


async def fail_run(conn: Conn, run_id: uuid.UUID, error: str) -> None:
    await conn.execute(
        "UPDATE outreach.search_runs SET status = 'failed', error = $2, finished_at = now() "
        "WHERE id = $1",
        run_id,
        error[:2000],
    )


async def reopen_run(conn: Conn, run_id: uuid.UUID) -> None:
    await conn.execute(
        "UPDATE outreach.search_runs SET status = 'queued', error = NULL, finished_at = NULL "
        "WHERE id = $1 AND status = 'failed'",
        run_id,
    )


async def insert_result(
    conn: Conn,
    *,
    run_id: uuid.UUID,
    provider_ref: str,
    payload: dict[str, Any],
    mapped: dict[str, Any],
    lead_id: uuid.UUID,
    outcome: str,
) -> bool:
    status = await conn.execute(
        "INSERT INTO outreach.search_results (run_id, provider_ref, payload, mapped, lead_id, "
        "                                     outcome, created_at) "
        # clock_timestamp(): the provider's order within a page survives (now() is one
        # instant per transaction), so "the top N results" means what the provider ranked.
        "VALUES ($1, $2, $3::jsonb, $4::jsonb, $5, $6, clock_timestamp()) "
        "ON CONFLICT (run_id, provider_ref) DO NOTHING",
        run_id,
        provider_ref,
        orjson.dumps(payload, default=str).decode(),
        orjson.dumps(mapped).decode(),
        lead_id,
        outcome,
    )
    return status == "INSERT 0 1"


async def leads_without_email(conn: Conn, run_id: uuid.UUID, limit: int) -> list[uuid.UUID]:
    """The run's leads that have no email yet, in the order the provider ranked them."""
    rows = await conn.fetch(
        "SELECT r.lead_id FROM outreach.search_results r "
        "JOIN outreach.leads l ON l.id = r.lead_id "
        "WHERE r.run_id = $1 AND l.email IS NULL AND NOT l.do_not_contact "
        "ORDER BY r.created_at, r.provider_ref LIMIT $2",
        run_id,
        limit,
    )
    return [r["lead_id"] for r in rows]


async def result_exists(conn: Conn, run_id: uuid.UUID, provider_ref: str) -> bool:
    return bool(
        await conn.fetchval(
            "SELECT 1 FROM outreach.search_results WHERE run_id = $1 AND provider_ref = $2",
            run_id,
            provider_ref,
        )
    )


# ---- leads --------------------------------------------------------------------------------


async def lock_lead_by_source(conn: Conn, source: str, source_ref: str) -> Prospect | None:
    return _one(
        Prospect,
        await conn.fetchrow(
            f"SELECT {LEAD_COLUMNS} FROM outreach.leads WHERE source = $1 AND source_ref = $2 "
            "FOR UPDATE",
            source,
            source_ref,
        ),
    )


async def lock_lead_by_email(conn: Conn, email: str) -> Prospect | None:
    return _one(
        Prospect,
        await conn.fetchrow(
            f"SELECT {LEAD_COLUMNS} FROM outreach.leads WHERE normalized_email = $1 FOR UPDATE",
            email,
        ),
    )


async def email_taken(conn: Conn, email: str) -> bool:
    return bool(
        await conn.fetchval("SELECT 1 FROM outreach.leads WHERE normalized_email = $1", email)
    )


async def insert_lead(conn: Conn, values: dict[str, Any]) -> uuid.UUID | None:
    """None when a unique key (email, or source + source_ref) is already taken."""
    columns = list(values)
    placeholders = ", ".join(f"${i}" for i in range(1, len(columns) + 1))
    return await conn.fetchval(
        f"INSERT INTO outreach.leads ({', '.join(columns)}) VALUES ({placeholders}) "
        "ON CONFLICT DO NOTHING RETURNING id",
        *values.values(),
    )


async def update_lead(conn: Conn, lead_id: uuid.UUID, values: dict[str, Any]) -> None:
    if not values:
        return
    sets = ", ".join(
        f"{c} = ${i}::jsonb" if c == "enrichment_data" else f"{c} = ${i}"
        for i, c in enumerate(values, start=2)
    )
    params = [orjson.dumps(v).decode() if k == "enrichment_data" else v for k, v in values.items()]
    await conn.execute(f"UPDATE outreach.leads SET {sets} WHERE id = $1", lead_id, *params)


async def get_lead(conn: Conn, lead_id: uuid.UUID) -> Prospect | None:
    return _one(
        Prospect,
        await conn.fetchrow(f"SELECT {LEAD_COLUMNS} FROM outreach.leads WHERE id = $1", lead_id),
    )


SORTS = {
    "created_at": ("created_at", "ASC"),
    "-created_at": ("created_at", "DESC"),
    "last_name": ("last_name", "ASC"),
    "-last_name": ("last_name", "DESC"),
    "company": ("company", "ASC"),
    "-company": ("company", "DESC"),
}


async def search_leads(
    conn: Conn,
    *,
    filters: dict[str, Any],
    q: str | None,
    sort: str,
    after: tuple[Any, uuid.UUID] | None,
    limit: int,
) -> list[tuple[Prospect, Any]]:
    """(lead, its sort key) — the key makes the next page's cursor."""
    column, direction = SORTS[sort]
    clauses, params = ["true"], []

    def param(value: Any) -> str:
        params.append(value)
        return f"${len(params)}"

    for name, value in filters.items():
        clauses.append(f"{name} = {param(value)}")
    if q:
        like = param("%" + q.replace("%", r"\%").replace("_", r"\_") + "%")
        clauses.append(
            f"(normalized_email ILIKE {like} OR first_name ILIKE {like} OR last_name ILIKE {like}"
            f" OR company ILIKE {like} OR title ILIKE {like})"
        )
    # Keyset pagination on (sort column, id); NULLs sort as '' so the key is total.
    key = f"coalesce({column}::text, '')" if column != "created_at" else column
    if after is not None:
        op = ">" if direction == "ASC" else "<"
        clauses.append(f"({key}, id) {op} ({param(after[0])}, {param(after[1])})")
    rows = await conn.fetch(
        f"SELECT {LEAD_COLUMNS}, {key} AS _sort_key FROM outreach.leads "
        f"WHERE {' AND '.join(clauses)} ORDER BY {key} {direction}, id {direction} "
        f"LIMIT {param(limit)}",
        *params,
    )
    return [
        (Prospect(**{k: v for k, v in r.items() if k != "_sort_key"}), r["_sort_key"]) for r in rows
    ]


async def lead_history(conn: Conn, lead_id: uuid.UUID) -> LeadHistory:
    runs = await conn.fetch(
        "SELECT id, provider, overwrite, status, outcome, changes, error, job_id, created_at, "
        "finished_at FROM outreach.enrichment_runs WHERE lead_id = $1 ORDER BY created_at DESC",
        lead_id,
    )
    found_in = await conn.fetch(
        "SELECT r.id AS run_id, r.icp_id, r.provider, r.created_at, s.outcome "
        "FROM outreach.search_results s JOIN outreach.search_runs r ON r.id = s.run_id "
        "WHERE s.lead_id = $1 ORDER BY r.created_at DESC LIMIT 20",
        lead_id,
    )
    jobs = await conn.fetch(
        "SELECT id, type, status, attempts, error, created_at, finished_at "
        "FROM outreach.job_executions WHERE lead_id = $1 ORDER BY created_at DESC LIMIT 20",
        lead_id,
    )

    return LeadHistory(
        enrichment_runs=[EnrichmentRun(**r) for r in runs],
        search_results=[FoundIn(**r) for r in found_in],
        jobs=[LeadJob(**r) for r in jobs],
    )


async def icp_exists(conn: Conn, icp_id: uuid.UUID) -> bool:
    return bool(await conn.fetchval("SELECT 1 FROM outreach.icps WHERE id = $1", icp_id))
