"""Writing jobs into pgqueuer's table through the caller's own connection.

A job row goes in through the same connection (and so the same transaction) as the
domain change that produced it: a rollback discards the job, a commit makes it visible to
workers exactly once. `Tx.enqueue` is the usual way in; the hot paths fuse the job insert
into their one statement with `fused_enqueue_ctes`.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import asyncpg
import orjson
from pgqueuer.adapters.drivers.asyncpg import AsyncpgDriver
from pgqueuer.adapters.persistence.queries import Queries

from leadflood.core.tracing import job_headers


async def enqueue(
    conn: asyncpg.Connection,
    name: str,
    payload: dict[str, Any],
    *,
    delay: timedelta | None = None,
    dedupe_key: str | None = None,
) -> int:
    """One job, written through `conn` and so committed or discarded with its transaction."""
    ids = await Queries(AsyncpgDriver(conn)).enqueue(
        name, orjson.dumps(payload), 0, delay, dedupe_key, job_headers()
    )
    return int(ids[0])


async def enqueue_once(conn: asyncpg.Connection, name: str, payload: dict[str, Any]) -> bool:
    """Enqueue `name` unless one is already queued or running (its dedupe key is its
    name); safe inside a transaction, where a raised duplicate would abort it."""
    ids = await Queries(AsyncpgDriver(conn)).enqueue(
        name, orjson.dumps(payload), 0, None, f"once:{name}", job_headers(), on_conflict="skip"
    )
    return ids[0] is not None


async def failed_job_entrypoint(conn: asyncpg.Connection, job_id: int) -> str | None:
    """The entrypoint of a job held as `failed` (a dead letter), or None."""
    return await conn.fetchval(
        "SELECT entrypoint FROM pgqueuer WHERE id = $1 AND status = 'failed'", job_id
    )


def jobs_written(conn: Any) -> None:
    """A fused statement wrote job rows on `conn`: a unit of work (`Tx`) wakes the workers
    once it commits. A bare connection (tests, scripts) cannot; its jobs are found by the
    workers' next poll."""
    mark = getattr(conn, "jobs_enqueued", None)
    if mark is not None:
        mark()


def fused_enqueue_ctes(
    entrypoint: str,
    source_cte: str,
    id_column: str,
    execute_after: str = "now()",
    *,
    headers: str,
) -> str:
    """CTEs that enqueue one `entrypoint` job per row of `source_cte`, carrying
    {"lead_id": <id_column>}, written exactly as pgqueuer's own enqueue writes them
    (job row + 'queued' log row); the caller marks its unit with `jobs_written` so the
    workers are woken once it commits (decision 0024). `headers` is the statement's
    parameter bound to `core.tracing.job_headers_json()` (the chain's request id and trace
    context).

    For the hottest path only (ingestion, decision 0003): the domain row and its
    job commit in one statement. tests/core/test_jobs.py pins the equivalence.
    """
    if not entrypoint.replace("_", "").isalnum():
        raise ValueError("entrypoint must be an identifier")
    if not (headers.startswith("$") and headers[1:].isdigit()):
        raise ValueError("headers must be a statement parameter such as $3")
    return f"""
    fused_job AS (
        INSERT INTO pgqueuer (priority, entrypoint, payload, status, headers, execute_after)
        SELECT 0, '{entrypoint}',
               convert_to(json_build_object('lead_id', {id_column})::text, 'UTF8'), 'queued',
               {headers}::text::jsonb, {execute_after}
        FROM {source_cte}
        RETURNING id, entrypoint, priority
    ),
    fused_job_log AS (
        INSERT INTO pgqueuer_log (job_id, status, entrypoint, priority)
        SELECT id, 'queued', entrypoint, priority FROM fused_job
    )"""
