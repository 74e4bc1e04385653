"""Workers are woken after a commit that wrote jobs, by a NOTIFY of its own (decision
0024), not by pgqueuer's trigger inside every queue transaction."""

from __future__ import annotations

import asyncio

import asyncpg
import orjson

from leadflood.core.jobs import JobContext, job, run_worker
from leadflood.core.uow import single_statements, unit_of_work

SEEN: list[float] = []


@job("test_wake_probe")
async def wake_probe(ctx: JobContext) -> None:
    SEEN.append(asyncio.get_running_loop().time())


async def _listen(runtime) -> tuple[asyncpg.Connection, asyncio.Queue[str]]:
    conn = await runtime.db.listen_connection()
    heard: asyncio.Queue[str] = asyncio.Queue()
    await conn.add_listener("ch_pgqueuer", lambda *args: heard.put_nowait(args[3]))
    return conn, heard


async def _heard_within(heard: asyncio.Queue[str], seconds: float) -> list[dict]:
    got = []
    try:
        while True:
            got.append(orjson.loads(await asyncio.wait_for(heard.get(), seconds)))
    except TimeoutError:
        return got


async def test_a_commit_that_wrote_jobs_wakes_the_workers_once_and_nothing_else_does(
    runtime,
) -> None:
    conn, heard = await _listen(runtime)
    try:
        async with unit_of_work(runtime.db) as tx:  # three jobs, one commit
            for n in range(3):
                await tx.enqueue("test_wake_probe", {"n": n})
        events = await _heard_within(heard, 0.5)
        assert len(events) == 1
        assert events[0]["type"] == "table_changed_event" and events[0]["operation"] == "insert"

        try:  # rolled back: nothing to wake for
            async with unit_of_work(runtime.db) as tx:
                await tx.enqueue("test_wake_probe", {"n": 9})
                raise RuntimeError("abandon")
        except RuntimeError:
            pass
        async with single_statements(runtime.db) as tx:  # no jobs, no wake-up
            await tx.fetchval("SELECT 1")
        # The queue's own statements (a worker's pick and completion) no longer notify.
        async with runtime.db.pool_connection() as raw:
            await raw.execute("UPDATE pgqueuer SET priority = priority + 1")
            await raw.execute("DELETE FROM pgqueuer WHERE entrypoint = 'test_wake_probe'")
        assert await _heard_within(heard, 0.5) == []
    finally:
        await conn.close()


async def test_a_waiting_worker_takes_a_new_job_at_once_not_at_its_next_poll(runtime) -> None:
    SEEN.clear()
    stop = asyncio.Event()
    worker = asyncio.create_task(run_worker(runtime, concurrency=2, stop=stop))
    try:
        await asyncio.sleep(1.0)  # idle: waiting on LISTEN, next poll 5 s away
        loop = asyncio.get_running_loop()
        committed = loop.time()
        async with unit_of_work(runtime.db) as tx:
            await tx.enqueue("test_wake_probe", {})
        while not SEEN and loop.time() - committed < 10:
            await asyncio.sleep(0.01)
        assert SEEN, "the job never ran"
        assert SEEN[0] - committed < 2.5, "woken by the poll, not by the commit"
    finally:
        stop.set()
        await asyncio.wait_for(worker, timeout=15)
