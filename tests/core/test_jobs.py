"""Transactional enqueue: rolled-back jobs never run, committed ones run exactly once."""

from __future__ import annotations

import asyncio
from collections import Counter

import pytest

from leadflood.core.jobs import REGISTRY, JobContext, job
from leadflood.core.uow import single_statements, unit_of_work
from tests.conftest import drain_jobs
from tests.sql import run

RUNS: Counter[str] = Counter()


@job("test_probe")
async def probe(ctx: JobContext) -> None:
    RUNS[ctx.payload["tag"]] += 1


class _Rollback(Exception):
    pass


async def test_rolled_back_job_never_runs_and_committed_job_runs_exactly_once(runtime) -> None:
    RUNS.clear()
    with pytest.raises(_Rollback):
        async with unit_of_work(runtime.db) as conn:
            await run(conn, "SELECT 1")
            await conn.enqueue("test_probe", {"tag": "rolled-back"})
            raise _Rollback
    async with unit_of_work(runtime.db) as conn:
        await conn.enqueue("test_probe", {"tag": "committed"})

    # Two workers compete for the same queue: the job must still run once.
    await asyncio.gather(drain_jobs(runtime), drain_jobs(runtime))
    assert Counter({"committed": 1}) == RUNS
    async with single_statements(runtime.db) as conn:
        queued = (await run(conn, "SELECT count(*) FROM pgqueuer")).scalar()
    assert queued == 0


async def test_enqueue_as_first_statement_still_joins_the_transaction(runtime) -> None:
    RUNS.clear()
    with pytest.raises(_Rollback):
        async with unit_of_work(runtime.db) as conn:
            await conn.enqueue("test_probe", {"tag": "first-statement"})
            raise _Rollback
    await drain_jobs(runtime)
    assert RUNS["first-statement"] == 0


def test_registry_knows_the_probe() -> None:
    assert "test_probe" in REGISTRY


async def test_fused_enqueue_writes_what_pgqueuer_enqueue_writes(runtime) -> None:
    """The ingestion statement's job CTE must stay equivalent to the library's enqueue,
    the headers carrying the request's correlation id included (and none outside one)."""
    from leadflood.core.queue import fused_enqueue_ctes
    from leadflood.core.tracing import job_headers_json, request_span

    RUNS.clear()
    sql = (
        "WITH src AS (SELECT 'via-fused'::text AS lead_id),"
        + fused_enqueue_ctes("test_probe", "src", "lead_id", headers="$1")
        + " SELECT 1"
    )
    for request_id in (None, "req-42"):
        async with runtime.db.pool_connection() as raw:
            await raw.execute("DELETE FROM pgqueuer; DELETE FROM pgqueuer_log")
        if request_id is None:
            async with unit_of_work(runtime.db) as conn:
                await conn.enqueue("test_probe", {"lead_id": "via-api", "tag": "api"})
            headers = job_headers_json()
        else:
            with request_span("POST", request_id):
                async with unit_of_work(runtime.db) as conn:
                    await conn.enqueue("test_probe", {"lead_id": "via-api", "tag": "api"})
                headers = job_headers_json()
        async with runtime.db.pool_connection() as raw:
            await raw.execute(sql, headers)
            jobs = await raw.fetch(
                "SELECT priority, status, entrypoint, dedupe_key, headers, attempts, "
                "queue_manager_id, execute_after <= now() AS due FROM pgqueuer ORDER BY id"
            )
            logs = await raw.fetch(
                "SELECT status, entrypoint, priority, traceback, aggregated FROM pgqueuer_log "
                "ORDER BY id"
            )
        assert len(jobs) == 2 and dict(jobs[0]) == dict(jobs[1])
        assert len(logs) == 2 and dict(logs[0]) == dict(logs[1])
        expected = None if request_id is None else {"request_id": request_id}
        assert jobs[0]["headers"] == expected


def test_fused_enqueue_refuses_non_identifier_entrypoints() -> None:
    from leadflood.core.queue import fused_enqueue_ctes

    with pytest.raises(ValueError):
        fused_enqueue_ctes("x'; DROP TABLE leads; --", "src", "lead_id", headers="$1")
    with pytest.raises(ValueError):
        fused_enqueue_ctes("probe", "src", "lead_id", headers="'x'::jsonb")


IN_FLIGHT = {"now": 0, "max": 0}


@job("test_slow_probe")
async def slow_probe(ctx: JobContext) -> None:
    IN_FLIGHT["now"] += 1
    IN_FLIGHT["max"] = max(IN_FLIGHT["max"], IN_FLIGHT["now"])
    try:
        await asyncio.sleep(0.02)
    finally:
        IN_FLIGHT["now"] -= 1
    RUNS[ctx.payload["tag"]] += 1


async def test_worker_runs_at_most_concurrency_handlers_at_once(runtime) -> None:
    """pgqueuer may pick up to 2x ahead; the worker's own slots bound what runs."""
    from leadflood.core.jobs import run_worker

    RUNS.clear()
    IN_FLIGHT.update(now=0, max=0)
    async with unit_of_work(runtime.db) as conn:
        for i in range(30):
            await conn.enqueue("test_slow_probe", {"tag": f"slow-{i}"})
    await run_worker(runtime, concurrency=3, drain=True)
    assert len(RUNS) == 30 and set(RUNS.values()) == {1}
    assert IN_FLIGHT["max"] == 3
