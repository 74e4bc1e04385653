"""Tracked jobs: a `job_executions` row per background job, with its own retry schedule.

The row is what `GET /v1/jobs/{id}` shows (queued / running / completed / failed,
attempts, result, error) and what links a job to its lead, ICP or search run. Each
attempt is one pgqueuer job carrying only the execution id; a retry is a new delayed
job enqueued in the same transaction that records the failed attempt. A failed
execution stays as the dead letter (issue 8 adds replay).
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import asyncpg
import orjson
import structlog

from leadflood.core.jobs import JobContext, job
from leadflood.core.providers import PermanentProviderError, TransientProviderError
from leadflood.core.runtime import Runtime
from leadflood.core.uow import single_statements, unit_of_work

log = structlog.get_logger("leadflood.executions")


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int
    delays: tuple[timedelta, ...]  # before attempt 2, 3, …; the last one repeats

    def delay_after(self, attempt: int, retry_after: timedelta | None = None) -> timedelta | None:
        """Delay before the next attempt, or None when `attempt` was the last."""
        if attempt >= self.max_attempts:
            return None
        delay = self.delays[min(attempt - 1, len(self.delays) - 1)]
        if retry_after is not None:
            delay = max(delay, min(retry_after, timedelta(hours=1)))
        return delay


class TerminalJobError(Exception):
    """A job input problem that no retry can fix (e.g. the ICP was deleted)."""

    def __init__(self, code: str, message: str) -> None:
        self.code = code
        super().__init__(f"{code}: {message}")


class Deferred(Exception):
    """Not now, and not a failure: run again after `delay` without spending an attempt
    (outside a mailbox's send window, or its daily limit reached)."""

    def __init__(self, delay: timedelta, reason: str) -> None:
        self.delay = delay
        self.reason = reason
        super().__init__(reason)


Work = Callable[[Runtime, dict[str, Any]], Awaitable[dict[str, Any]]]
OnFailure = Callable[[Runtime, dict[str, Any], str], Awaitable[None]]
OnReplay = Callable[[asyncpg.Connection, dict[str, Any]], Awaitable[None]]


@dataclass(frozen=True)
class TrackedJob:
    type: str
    policy: RetryPolicy
    work: Work
    on_failure: OnFailure | None = None
    # Puts the domain object back where a fresh attempt expects it (dead-letter replay).
    on_replay: OnReplay | None = None


TRACKED: dict[str, TrackedJob] = {}

_COLUMNS = (
    "id, type, status, attempts, max_attempts, payload, result, error, dedupe_key, lead_id, "
    "icp_id, search_run_id, next_attempt_at, started_at, finished_at, created_at, updated_at"
)


def tracked_job(
    type_: str,
    policy: RetryPolicy,
    *,
    on_failure: OnFailure | None = None,
    on_replay: OnReplay | None = None,
):
    def register(work: Work) -> Work:
        TRACKED[type_] = TrackedJob(type_, policy, work, on_failure, on_replay)

        @job(type_, max_attempts=1)
        async def run(ctx: JobContext) -> None:
            await run_execution(ctx.runtime, uuid.UUID(ctx.payload["execution_id"]))

        return work

    return register


async def create_execution(
    conn: asyncpg.Connection,
    type_: str,
    payload: dict[str, Any],
    *,
    max_attempts: int,
    dedupe_key: str | None = None,
    lead_id: uuid.UUID | None = None,
    icp_id: uuid.UUID | None = None,
    search_run_id: uuid.UUID | None = None,
) -> tuple[uuid.UUID, bool]:
    """(execution id, created). With a dedupe_key already queued or running, the
    existing execution is returned and nothing is enqueued. Call inside a transaction."""
    row_id = await conn.fetchval(
        "INSERT INTO outreach.job_executions (type, max_attempts, payload, dedupe_key, lead_id, "
        "                                     icp_id, search_run_id) "
        "VALUES ($1, $2, $3::jsonb, $4, $5, $6, $7) "
        "ON CONFLICT (dedupe_key) WHERE dedupe_key IS NOT NULL "
        "                         AND status IN ('queued', 'running') DO NOTHING "
        "RETURNING id",
        type_,
        max_attempts,
        orjson.dumps(payload).decode(),
        dedupe_key,
        lead_id,
        icp_id,
        search_run_id,
    )
    if row_id is None:
        existing = await conn.fetchval(
            "SELECT id FROM outreach.job_executions "
            "WHERE dedupe_key = $1 AND status IN ('queued', 'running')",
            dedupe_key,
        )
        return existing, False
    await conn.enqueue(type_, {"execution_id": str(row_id)})
    return row_id, True


async def get_execution(conn: asyncpg.Connection, execution_id: uuid.UUID) -> dict | None:
    row = await conn.fetchrow(
        f"SELECT {_COLUMNS} FROM outreach.job_executions WHERE id = $1", execution_id
    )
    return _decoded(row) if row else None


def _decoded(row: asyncpg.Record) -> dict[str, Any]:
    out = dict(row)
    for key in ("payload", "result"):
        if isinstance(out.get(key), str):
            out[key] = orjson.loads(out[key])
    return out


# `running` too: pgqueuer hands a job out again only when its holder stopped heartbeating.
_CLAIM = f"""
UPDATE outreach.job_executions
SET status = 'running', attempts = attempts + 1, started_at = coalesce(started_at, now()),
    next_attempt_at = NULL
WHERE id = $1 AND status IN ('queued', 'running')
RETURNING {_COLUMNS}
"""


async def run_execution(runtime: Runtime, execution_id: uuid.UUID) -> str:
    """One attempt. Returns the execution's status afterwards."""
    async with single_statements(runtime.db) as conn:
        row = await conn.fetchrow(_CLAIM, execution_id)
    if row is None:
        return "noop"  # finished already (or unknown)
    execution = _decoded(row)
    spec = TRACKED[execution["type"]]
    attempt = execution["attempts"]
    with structlog.contextvars.bound_contextvars(execution_id=str(execution_id)):
        try:
            result = await spec.work(runtime, execution)
        except Deferred as deferral:
            await _schedule_retry(
                runtime, execution, deferral.reason, deferral.delay, count_attempt=False
            )
            log.info(
                "execution_deferred", reason=deferral.reason, delay_s=deferral.delay.total_seconds()
            )
            return "queued"
        except (TransientProviderError, OSError, TimeoutError) as exc:
            retry_after = getattr(exc, "retry_after", None)
            delay = spec.policy.delay_after(attempt, retry_after)
            if delay is not None:
                await _schedule_retry(runtime, execution, str(exc), delay)
                log.info("execution_retry", attempt=attempt, delay_s=delay.total_seconds())
                return "queued"
            return await _fail(runtime, spec, execution, str(exc))
        except (PermanentProviderError, TerminalJobError) as exc:
            return await _fail(runtime, spec, execution, str(exc))
        except Exception as exc:
            log.exception("execution_crashed", attempt=attempt)
            delay = spec.policy.delay_after(attempt)
            if delay is not None:
                await _schedule_retry(runtime, execution, f"unexpected: {exc!r}", delay)
                return "queued"
            return await _fail(runtime, spec, execution, f"unexpected: {exc!r}")
    async with single_statements(runtime.db) as conn:
        await conn.execute(
            "UPDATE outreach.job_executions SET status = 'completed', result = $2::jsonb, "
            "error = NULL, finished_at = now() WHERE id = $1",
            execution_id,
            orjson.dumps(result, default=str).decode(),
        )
    return "completed"


async def _schedule_retry(
    runtime: Runtime,
    execution: dict[str, Any],
    error: str,
    delay: timedelta,
    *,
    count_attempt: bool = True,
) -> None:
    async with unit_of_work(runtime.db) as conn:
        await conn.execute(
            "UPDATE outreach.job_executions SET status = 'queued', error = $2, "
            "next_attempt_at = now() + $3, attempts = attempts - $4 WHERE id = $1",
            execution["id"],
            error[:2000],
            delay,
            0 if count_attempt else 1,
        )
        await conn.enqueue(execution["type"], {"execution_id": str(execution["id"])}, delay=delay)


async def _fail(runtime: Runtime, spec: TrackedJob, execution: dict[str, Any], error: str) -> str:
    async with single_statements(runtime.db) as conn:
        await conn.execute(
            "UPDATE outreach.job_executions SET status = 'failed', error = $2, "
            "finished_at = now() WHERE id = $1",
            execution["id"],
            error[:2000],
        )
    if spec.on_failure is not None:
        await spec.on_failure(runtime, execution, error)
    log.warning("execution_failed", type=execution["type"], error=error[:300])
    return "failed"


async def failed_executions(conn: asyncpg.Connection, limit: int = 100) -> list[dict[str, Any]]:
    rows = await conn.fetch(
        f"SELECT {_COLUMNS} FROM outreach.job_executions WHERE status = 'failed' "
        "ORDER BY finished_at DESC NULLS LAST LIMIT $1",
        limit,
    )
    return [_decoded(r) for r in rows]


async def replay_execution(runtime: Runtime, execution_id: uuid.UUID) -> dict[str, Any]:
    """A failed (dead-letter) execution gets a fresh round of attempts. Run it after the
    cause is fixed. Refuses anything that is not failed."""
    async with unit_of_work(runtime.db) as conn:
        row = await conn.fetchrow(
            f"UPDATE outreach.job_executions SET status = 'queued', attempts = 0, error = NULL, "
            "result = NULL, finished_at = NULL, next_attempt_at = NULL "
            f"WHERE id = $1 AND status = 'failed' RETURNING {_COLUMNS}",
            execution_id,
        )
        if row is None:
            current = await get_execution(conn, execution_id)
            raise TerminalJobError(
                "not_replayable",
                "no such job" if current is None else f"job is {current['status']}, not failed",
            )
        execution = _decoded(row)
        spec = TRACKED.get(execution["type"])
        if spec is not None and spec.on_replay is not None:
            await spec.on_replay(conn, execution)
        await conn.enqueue(execution["type"], {"execution_id": str(execution_id)})
    return execution
