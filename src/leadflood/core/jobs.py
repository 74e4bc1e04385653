"""Background jobs on pgqueuer, enqueued inside the caller's unit of work (core/queue).

The runner is a boundary: a handler opens its units of work through its `JobContext`
(one for a plain job; claim, call, record for one that calls a partner) and passes the
`Tx` to the services.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import orjson
import structlog
from pgqueuer.adapters.drivers.asyncpg import AsyncpgDriver
from pgqueuer.adapters.persistence.queries import Queries
from pgqueuer.core.executors import DatabaseRetryEntrypointExecutor, EntrypointExecutorParameters
from pgqueuer.core.qm import QueueManager
from pgqueuer.domain.models import Job
from pgqueuer.domain.types import QueueExecutionMode

from leadflood.core.error_reporting import report
from leadflood.core.retry import NO_RETRY, STAGE_RETRY, RetryPolicy
from leadflood.core.runtime import Runtime
from leadflood.core.tracing import job_span
from leadflood.core.uow import Tx, single_statements, unit_of_work

log = structlog.get_logger("leadflood.jobs")


@dataclass(frozen=True)
class JobContext:
    runtime: Runtime
    job_id: int
    attempts: int
    payload: dict[str, Any]

    def unit_of_work(self) -> AbstractAsyncContextManager[Tx]:
        return unit_of_work(self.runtime.db)

    def statements(self) -> AbstractAsyncContextManager[Tx]:
        """Autocommit, for the pipeline stages' single fused statements (decision 0003)."""
        return single_statements(self.runtime.db)


JobHandler = Callable[[JobContext], Awaitable[Any]]


@dataclass(frozen=True)
class JobSpec:
    name: str
    handler: JobHandler
    # Unexpected exceptions (not domain outcomes) are retried on this schedule.
    retry: RetryPolicy = STAGE_RETRY


REGISTRY: dict[str, JobSpec] = {}

# The pipeline's stages: enqueued by one domain, registered by the next.
VALIDATE_LEAD = "validate_lead"
ROUTE_LEAD = "route_lead"
DELIVER_LEAD = "deliver_lead"
# Periodic safety nets (issue 14): re-route unrouted leads, re-enqueue stranded work.
RETRY_UNROUTED = "routing.retry_unrouted"
RECONCILE = "system.reconcile"
PRUNE_JOB_LOG = "system.prune_job_log"
BACKUP = "system.backup"


def job(
    name: str,
    *,
    retry: RetryPolicy = STAGE_RETRY,
    tracked: bool = False,
    on_failure: Callable[..., Awaitable[None]] | None = None,
    on_replay: Callable[..., Awaitable[None]] | None = None,
) -> Callable[[Callable[..., Awaitable[Any]]], Callable[..., Awaitable[Any]]]:
    """Register a job handler — the one way to declare a job.

    Plain (`tracked=False`): `handler(ctx)`; pgqueuer retries an exception on `retry`.
    Tracked: `handler(ctx, execution)` with a `job_executions` row that the API shows
    (status, attempts, result, error) and links to its lead, ICP or search run; provider
    errors are retried on `retry` (Retry-After honoured), `Deferred` waits without spending
    an attempt, and a final failure calls `on_failure(tx, execution, error)` in the unit
    that marks it failed (core/executions.py).
    """

    def register(func: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
        if tracked:
            from leadflood.core import executions

            REGISTRY[name] = JobSpec(
                name, executions.register(name, retry, func, on_failure, on_replay), NO_RETRY
            )
        else:
            REGISTRY[name] = JobSpec(name, func, retry)
        return func

    return register


def load_job_modules() -> None:
    """Import every domain's tasks so their @job registrations exist."""
    import importlib

    for module in (
        "leadflood.validation.tasks",
        "leadflood.routing.tasks",
        "leadflood.delivery.tasks",
        "leadflood.prospecting.tasks",
        "leadflood.enrichment.tasks",
        "leadflood.sequences.tasks",
        "leadflood.inbox.tasks",
        "leadflood.alerts.tasks",
        "leadflood.reconcile.tasks",
        "leadflood.jobs.tasks",
    ):
        try:
            importlib.import_module(module)
        except ModuleNotFoundError as exc:
            if exc.name != module:
                raise


def _entrypoint(
    runtime: Runtime, spec: JobSpec, slots: asyncio.Semaphore | None
) -> Callable[[Job], Awaitable[None]]:
    async def run(job: Job) -> None:
        if slots is None:
            return await handle(job)
        async with slots:
            return await handle(job)

    async def handle(job: Job) -> None:
        payload = orjson.loads(job.payload) if job.payload else {}
        # A pipeline job names its lead on every line: with the ingestion request's line
        # (which names it too) one id follows a lead from its request to its delivery.
        lead = payload.get("lead_id") if isinstance(payload, dict) else None
        with (
            structlog.contextvars.bound_contextvars(
                job_id=int(job.id),
                job=spec.name,
                attempt=job.attempts,
                **({"lead_id": str(lead)} if lead else {}),
            ),
            # The request that started this chain: its id on every line of every job after
            # it, and the parent of this job's span.
            job_span(spec.name, job.headers, str(lead) if lead else None),
        ):
            try:
                await spec.handler(
                    JobContext(
                        runtime=runtime, job_id=int(job.id), attempts=job.attempts, payload=payload
                    )
                )
            except Exception as exc:
                # pgqueuer retries or holds it as failed; the operator sees why in the log.
                log.exception(
                    "job_failed",
                    error=f"{type(exc).__name__}: {exc}"[:500],
                    max_attempts=spec.retry.max_attempts,
                )
                report(exc)
                raise

    return run


def build_queue_manager(
    runtime: Runtime, driver: AsyncpgDriver, slots: asyncio.Semaphore | None = None
) -> QueueManager:
    load_job_modules()
    qm = QueueManager(Queries(driver))
    for spec in REGISTRY.values():
        qm.register_executor(
            spec.name,
            DatabaseRetryEntrypointExecutor(
                parameters=EntrypointExecutorParameters(
                    concurrency_limit=0,
                    func=_entrypoint(runtime, spec, slots),
                    accepts_context=False,
                    # Terminal failures stay in the table as `failed` (dead letter).
                    on_failure="hold",
                ),
                max_attempts=spec.retry.max_attempts,
                initial_delay=spec.retry.first_delay,
            ),
        )
    return qm


async def run_worker(
    runtime: Runtime,
    *,
    concurrency: int = 10,
    drain: bool = False,
    stop: asyncio.Event | None = None,
) -> None:
    """Process jobs until `stop` is set, or with `drain` until no job is due or running.

    `drain` ignores jobs scheduled more than a few seconds ahead (e.g. a delivery retry
    in 30 minutes): pgqueuer's own drain mode would wait for them.
    """
    conn = await runtime.db.listen_connection()
    try:
        # `concurrency` handlers run at once (the semaphore); pgqueuer may hold up to
        # 2x that many picked. Its own cap counts jobs whose completion is still in its
        # log buffer (up to 100 ms), and a job that becomes due while the worker sits at
        # that cap gets no NOTIFY when a slot frees: it waited for pgqueuer's 100 ms
        # re-poll. Both were most of each pipeline stage's p95 in bench/e2e.py.
        slots = asyncio.Semaphore(concurrency)
        qm = build_queue_manager(runtime, AsyncpgDriver(conn), slots)
        qm.min_dequeue_poll_interval = _CAPACITY_REPOLL
        batch = max(1, concurrency)
        watchers: list[asyncio.Task[None]] = []
        if stop is not None:

            async def watch() -> None:
                await stop.wait()
                qm.shutdown.set()

            watchers.append(asyncio.create_task(watch()))
        if drain:
            watchers.append(asyncio.create_task(_stop_when_idle(runtime, qm)))
        else:
            watchers.append(asyncio.create_task(_periodic(runtime)))
        try:
            await qm.run(
                batch_size=batch,
                max_concurrent_tasks=2 * batch,
                mode=QueueExecutionMode.continuous,
                dequeue_timeout=timedelta(seconds=1 if drain else 5),
                log_aggregation_interval=timedelta(0),
                heartbeat_timeout=timedelta(seconds=runtime.settings.job_heartbeat_timeout_s),
            )
        finally:
            for watcher in watchers:
                watcher.cancel()
    finally:
        await conn.close()


_CAPACITY_REPOLL = timedelta(milliseconds=10)


def periodic_jobs(settings: Any) -> dict[str, float]:
    """Jobs every running worker keeps enqueuing on a timer (seconds); one queued at a
    time however many workers there are."""
    backups = settings.backup_interval_hours
    return {
        **({BACKUP: backups * 3600.0} if backups else {}),
        "sequence.tick": 60.0,
        "mailbox.poll": settings.imap_poll_interval_s,
        "buyers.probe": 60.0,
        "alerts.evaluate": 60.0,
        "system.heartbeat": 60.0,
        RECONCILE: settings.reconcile_interval_s,
        RETRY_UNROUTED: settings.unrouted_retry_interval_s,
        PRUNE_JOB_LOG: 3600.0,
    }


async def _periodic(runtime: Runtime) -> None:
    intervals = periodic_jobs(runtime.settings)
    loop = asyncio.get_running_loop()
    due = dict.fromkeys(intervals, loop.time())
    while True:
        now = loop.time()
        for name, interval in intervals.items():
            if name not in REGISTRY or due[name] > now:
                continue
            due[name] = now + interval
            try:
                async with single_statements(runtime.db) as tx:
                    await tx.enqueue_once(name, {})
            except Exception:
                log.exception("periodic_enqueue_failed", job=name)
        await asyncio.sleep(max(0.05, min(due.values()) - loop.time()))


# Due now or within a few seconds (a throttled delivery's next turn), or running.
_BUSY = """
SELECT count(*) FROM pgqueuer
WHERE (status = 'queued' AND execute_after <= now() + interval '3 seconds')
   OR status = 'picked'
"""


async def _stop_when_idle(runtime: Runtime, qm: QueueManager) -> None:
    idle_checks = 0
    while True:
        await asyncio.sleep(0.05)
        async with single_statements(runtime.db) as tx:
            busy = await tx.fetchval(_BUSY)
        # Two idle readings in a row: a job that just finished may have enqueued the next.
        idle_checks = idle_checks + 1 if busy == 0 and not qm.job_context else 0
        if idle_checks >= 2:
            qm.shutdown.set()
            return
