"""Dead letters: jobs that failed for good, listed and replayed after the cause is fixed.

Two kinds share one command. Outreach jobs are tracked executions (a UUID); their
replay gives a fresh round of attempts and resets the linked run. Pipeline jobs
(validate_lead, route_lead, deliver_lead) are pgqueuer rows (an integer id) held as
`failed` after their last attempt; their replay puts them back in the queue.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

import orjson
from pgqueuer.adapters.drivers.asyncpg import AsyncpgDriver
from pgqueuer.adapters.persistence.queries import Queries

from leadflood.core.executions import failed_executions, replay_execution
from leadflood.core.jobs import load_job_modules
from leadflood.core.queue import failed_job_entrypoint
from leadflood.core.uow import Tx


class NotReplayable(Exception):
    pass


@dataclass(frozen=True, slots=True, kw_only=True)
class DeadLetter:
    id: str  # a UUID (tracked execution) or a number (pipeline job)
    type: str
    attempts: int
    failed_at: datetime | None
    error: str | None


async def list_dead_letters(tx: Tx, limit: int = 100) -> list[DeadLetter]:
    executions = await failed_executions(tx, limit)
    queued = await Queries(AsyncpgDriver(await tx.connection())).list_failed_jobs(limit)
    letters = [
        DeadLetter(
            id=str(e.id), type=e.type, attempts=e.attempts, failed_at=e.finished_at, error=e.error
        )
        for e in executions
    ]
    for job in queued:
        payload = orjson.loads(job.payload) if job.payload else {}
        letters.append(
            DeadLetter(
                id=str(job.id),
                type=job.entrypoint,
                attempts=job.attempts,
                failed_at=job.updated,
                error=f"payload {payload}",
            )
        )
    return letters


async def replay(tx: Tx, job_id: str) -> str:
    """Returns what was replayed; raises NotReplayable for unknown or unfailed jobs."""
    load_job_modules()  # the tracked job types register their replay hooks on import
    try:
        execution_id = uuid.UUID(job_id)
    except ValueError:
        execution_id = None
    if execution_id is not None:
        try:
            execution = await replay_execution(tx, execution_id)
        except Exception as exc:  # TerminalJobError: not failed / unknown
            raise NotReplayable(str(exc)) from None
        return f"{execution.type} {execution_id} queued for a new round of attempts"
    if not job_id.isdigit():
        raise NotReplayable("a job id is a UUID (outreach job) or a number (pipeline job)")
    failed = await failed_job_entrypoint(await tx.connection(), int(job_id))
    if failed is None:
        raise NotReplayable(f"no failed pipeline job {job_id}")
    await Queries(AsyncpgDriver(await tx.connection())).requeue_jobs([int(job_id)])  # type: ignore[list-item]
    return f"{failed} job {job_id} queued again"
