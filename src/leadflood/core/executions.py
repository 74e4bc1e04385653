"""Tracked jobs (`@job(..., tracked=True)`): a `job_executions` row per job, with retries.

The row is what `GET /v1/jobs/{id}` shows (queued / running / completed / failed,
attempts, result, error) and what links a job to its lead, ICP or search run. Each
attempt is one pgqueuer job carrying only the execution id; a retry is a new delayed job
enqueued in the same unit of work that records the failed attempt. A failed execution
stays as the dead letter until an operator replays it.

This module is part of the job runner (a boundary): it opens the units of work around
an attempt — claim, the handler (which opens its own for claim → call → record), then
the outcome with its retry job or its failure hook.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import structlog

from leadflood.core.jobs import JobContext
from leadflood.core.providers import PermanentProviderError, TransientProviderError
from leadflood.core.retry import RetryPolicy
from leadflood.core.uow import Conn, Tx

log = structlog.get_logger("leadflood.executions")


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


@dataclass(frozen=True, slots=True, kw_only=True)
class Execution:
    """One tracked job (a `job_executions` row)."""

    id: uuid.UUID
    type: str
    status: str
    attempts: int
    max_attempts: int
    payload: dict[str, Any]
    result: dict[str, Any] | None
    error: str | None
    dedupe_key: str | None
    lead_id: uuid.UUID | None
    icp_id: uuid.UUID | None
    search_run_id: uuid.UUID | None
    next_attempt_at: datetime | None
    started_at: datetime | None
    finished_at: datetime | None
    created_at: datetime
    updated_at: datetime

    def subject(self, name: str) -> uuid.UUID:
        """The lead or search run this kind of job always names (a programming error
        otherwise, not a retryable one)."""
        value = getattr(self, name)
        if value is None:
            raise ValueError(f"{self.type} execution {self.id} has no {name}")
        return value


Handler = Callable[[JobContext, Execution], Awaitable[dict[str, Any]]]
# Both run inside the unit of work that changes the execution's status.
OnFailure = Callable[[Tx, Execution, str], Awaitable[None]]
OnReplay = Callable[[Tx, Execution], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class TrackedJob:
    type: str
    policy: RetryPolicy
    handler: Handler
    on_failure: OnFailure | None = None
    # Puts the domain object back where a fresh attempt expects it (dead-letter replay).
    on_replay: OnReplay | None = None


TRACKED: dict[str, TrackedJob] = {}

_COLUMNS = (
    "id, type, status, attempts, max_attempts, payload, result, error, dedupe_key, lead_id, "
    "icp_id, search_run_id, next_attempt_at, started_at, finished_at, created_at, updated_at"
)


def register(
    type_: str,
    policy: RetryPolicy,
    handler: Handler,
    on_failure: OnFailure | None,
    on_replay: OnReplay | None,
) -> Callable[[JobContext], Awaitable[None]]:
    """Called by `core.jobs.job(tracked=True)`; returns the pgqueuer-level handler."""
    TRACKED[type_] = TrackedJob(type_, policy, handler, on_failure, on_replay)

    async def run(ctx: JobContext) -> None:
        await run_execution(ctx, uuid.UUID(ctx.payload["execution_id"]))

    return run


async def create_execution(
    tx: Tx,
    type_: str,
    payload: dict[str, Any],
    *,
    max_attempts: int,
    dedupe_key: str | None = None,
    lead_id: uuid.UUID | None = None,
    icp_id: uuid.UUID | None = None,
    search_run_id: uuid.UUID | None = None,
    delay: timedelta | None = None,
) -> tuple[uuid.UUID, bool]:
    """(execution id, created). With a dedupe_key already queued or running, the
    existing execution is returned and nothing is enqueued."""
    row_id = await tx.fetchval(
        "INSERT INTO outreach.job_executions (type, max_attempts, payload, dedupe_key, lead_id, "
        "                                     icp_id, search_run_id) "
        "VALUES ($1, $2, $3::jsonb, $4, $5, $6, $7) "
        "ON CONFLICT (dedupe_key) WHERE dedupe_key IS NOT NULL "
        "                         AND status IN ('queued', 'running') DO NOTHING "
        "RETURNING id",
        type_,
        max_attempts,
        payload,
        dedupe_key,
        lead_id,
        icp_id,
        search_run_id,
    )
    if row_id is None:
        existing = await tx.fetchval(
            "SELECT id FROM outreach.job_executions "
            "WHERE dedupe_key = $1 AND status IN ('queued', 'running')",
            dedupe_key,
        )
        return existing, False
    await tx.enqueue(type_, {"execution_id": str(row_id)}, delay=delay)
    return row_id, True


async def get_execution(conn: Conn, execution_id: uuid.UUID) -> Execution | None:
    row = await conn.fetchrow(
        f"SELECT {_COLUMNS} FROM outreach.job_executions WHERE id = $1", execution_id
    )
    return Execution(**row) if row else None


# `running` too: pgqueuer hands a job out again only when its holder stopped heartbeating.
_CLAIM = f"""
UPDATE outreach.job_executions
SET status = 'running', attempts = attempts + 1, started_at = coalesce(started_at, now()),
    next_attempt_at = NULL
WHERE id = $1 AND status IN ('queued', 'running')
RETURNING {_COLUMNS}
"""

_COMPLETED = """
UPDATE outreach.job_executions SET status = 'completed', result = $2::jsonb, error = NULL,
       finished_at = now()
WHERE id = $1
"""


_REQUEUED = """
UPDATE outreach.job_executions
SET status = 'queued', error = $2, next_attempt_at = now() + $3, attempts = attempts - $4
WHERE id = $1
"""

_FAILED = """
UPDATE outreach.job_executions SET status = 'failed', error = $2, finished_at = now()
WHERE id = $1
"""


async def run_execution(ctx: JobContext, execution_id: uuid.UUID) -> str:
    """One attempt. Returns the execution's status afterwards."""
    async with ctx.statements() as tx:
        row = await tx.fetchrow(_CLAIM, execution_id)
    if row is None:
        return "noop"  # finished already (or unknown)
    execution = Execution(**row)
    spec = TRACKED[execution.type]
    attempt = execution.attempts
    with structlog.contextvars.bound_contextvars(execution_id=str(execution_id)):
        try:
            result = await spec.handler(ctx, execution)
        except Deferred as deferral:
            await _retry(ctx, execution, deferral.reason, deferral.delay, count_attempt=False)
            log.info(
                "execution_deferred", reason=deferral.reason, delay_s=deferral.delay.total_seconds()
            )
            return "queued"
        except (TransientProviderError, OSError, TimeoutError) as exc:
            delay = spec.policy.delay_after(attempt, getattr(exc, "retry_after", None))
            if delay is not None:
                await _retry(ctx, execution, str(exc), delay)
                log.info("execution_retry", attempt=attempt, delay_s=delay.total_seconds())
                return "queued"
            return await _fail(ctx, spec, execution, str(exc))
        except (PermanentProviderError, TerminalJobError) as exc:
            return await _fail(ctx, spec, execution, str(exc))
        except Exception as exc:
            log.exception("execution_crashed", attempt=attempt)
            delay = spec.policy.delay_after(attempt)
            if delay is not None:
                await _retry(ctx, execution, f"unexpected: {exc!r}", delay)
                return "queued"
            return await _fail(ctx, spec, execution, f"unexpected: {exc!r}")
    async with ctx.statements() as tx:
        await tx.execute(_COMPLETED, execution_id, result)
    return "completed"


async def _retry(
    ctx: JobContext,
    execution: Execution,
    error: str,
    delay: timedelta,
    *,
    count_attempt: bool = True,
) -> None:
    spent = 0 if count_attempt else 1
    async with ctx.unit_of_work() as tx:
        await tx.execute(_REQUEUED, execution.id, error[:2000], delay, spent)
        await tx.enqueue(execution.type, {"execution_id": str(execution.id)}, delay=delay)


async def _fail(ctx: JobContext, spec: TrackedJob, execution: Execution, error: str) -> str:
    async with ctx.unit_of_work() as tx:
        await tx.execute(_FAILED, execution.id, error[:2000])
        if spec.on_failure is not None:
            await spec.on_failure(tx, execution, error)
    log.warning("execution_failed", type=execution.type, error=error[:300])
    return "failed"


async def failed_executions(conn: Conn, limit: int = 100) -> list[Execution]:
    rows = await conn.fetch(
        f"SELECT {_COLUMNS} FROM outreach.job_executions WHERE status = 'failed' "
        "ORDER BY finished_at DESC NULLS LAST LIMIT $1",
        limit,
    )
    return [Execution(**r) for r in rows]


async def replay_execution(tx: Tx, execution_id: uuid.UUID) -> Execution:
    """A failed (dead-letter) execution gets a fresh round of attempts. Run it after the
    cause is fixed. Refuses anything that is not failed."""
    row = await tx.fetchrow(
        f"UPDATE outreach.job_executions SET status = 'queued', attempts = 0, error = NULL, "
        "result = NULL, finished_at = NULL, next_attempt_at = NULL "
        f"WHERE id = $1 AND status = 'failed' RETURNING {_COLUMNS}",
        execution_id,
    )
    if row is None:
        current = await get_execution(tx, execution_id)
        raise TerminalJobError(
            "not_replayable",
            "no such job" if current is None else f"job is {current.status}, not failed",
        )
    execution = Execution(**row)
    spec = TRACKED.get(execution.type)
    if spec is not None and spec.on_replay is not None:
        await spec.on_replay(tx, execution)
    await tx.enqueue(execution.type, {"execution_id": str(execution_id)})
    return execution
