"""The runbooks under docs/runbooks, followed step by step through the CLI."""

from __future__ import annotations

import asyncio
import re

import pytest

from leadflood.core import migrate
from leadflood.core.db import Database
from leadflood.core.runtime import build_runtime
from leadflood.core.uow import single_statements, unit_of_work
from tests.conftest import drain_jobs, make_settings
from tests.factories import make_buyer, make_lead, make_world
from tests.outreach.test_dead_letters import FLAKY
from tests.pg import recreate_database, server_url


def _fresh(name: str) -> str:
    url = recreate_database(server_url(), name)
    migrate.upgrade(url)
    return url


async def _populate(url: str, n: int) -> None:
    db = Database(url, pool_size=2)
    try:
        async with unit_of_work(db) as conn:
            world = await make_world(conn)
            await make_buyer(conn, world)
            for i in range(n):
                await make_lead(conn, world, email=f"r{i}@example.com")
    finally:
        await db.dispose()


async def _count(url: str, sql: str) -> int:
    db = Database(url, pool_size=1)
    try:
        async with single_statements(db) as conn:
            return await conn.fetchval(sql)
    finally:
        await db.dispose()


@pytest.fixture
def at(monkeypatch, cli):
    """Run the CLI against a given database."""

    def run(url: str, *args: str):
        monkeypatch.setenv("LEADFLOOD_DATABASE_URL", url)
        return cli(*args)

    return run


# Sync tests: the CLI runs its own event loop, as it does from a shell.
def test_upgrade_and_rollback_runbook(at, tmp_path) -> None:
    url = _fresh("leadflood_runbook_upgrade")
    asyncio.run(_populate(url, 12))
    assert at(url, "backup", "--to", str(tmp_path), "--keep", "14").exit_code == 0
    rolled = at(url, "migrate", "--to", "0012")
    assert rolled.exit_code == 0 and "downgraded to 0012" in rolled.output
    assert asyncio.run(_count(url, "SELECT count(*) FROM leads")) == 12
    assert asyncio.run(_count(url, "SELECT version_num::int FROM alembic_version")) == 12
    upgraded = at(url, "migrate")
    assert upgraded.exit_code == 0 and "migrations applied" in upgraded.output
    assert asyncio.run(_count(url, "SELECT count(*) FROM leads")) == 12
    assert asyncio.run(_count(url, "SELECT version_num FROM alembic_version")) == migrate.head()


def test_restore_runbook(at, tmp_path) -> None:
    url = _fresh("leadflood_runbook_restore")
    asyncio.run(_populate(url, 7))
    at(url, "backup", "--to", str(tmp_path))
    (dump,) = tmp_path.glob("leadflood-*.dump")
    asyncio.run(_populate(url, 5))  # after the backup
    restored = at(url, "restore", str(dump), "--yes")
    assert restored.exit_code == 0 and "verified" in restored.output
    assert at(url, "migrate").exit_code == 0
    assert asyncio.run(_count(url, "SELECT count(*) FROM leads")) == 7
    damaged = tmp_path / "damaged.dump"
    damaged.write_bytes(dump.read_bytes()[:500])
    refused = at(url, "restore", str(damaged), "--yes")
    assert refused.exit_code == 1 and "restore_failed" in refused.output
    assert asyncio.run(_count(url, "SELECT count(*) FROM leads")) == 7


def test_dead_letter_replay_runbook(at, database_url) -> None:
    async def fail_once_then_drain(enqueue: bool) -> None:
        runtime = build_runtime(make_settings(database_url), database_url)
        try:
            if enqueue:
                async with unit_of_work(runtime.db) as conn:
                    await conn.enqueue("test_flaky_pipeline_job", {"lead_id": "runbook"})
            await drain_jobs(runtime)
        finally:
            await runtime.close()

    FLAKY.update(broken=True, runs=0)
    asyncio.run(fail_once_then_drain(enqueue=True))
    listed = at(database_url, "jobs", "list")
    job_id = re.search(r"^(\S+)\s+test_flaky_pipeline_job", listed.output, re.MULTILINE)
    assert job_id, listed.output
    FLAKY["broken"] = False  # step 2: the cause is fixed
    replayed = at(database_url, "jobs", "replay", job_id.group(1))
    assert replayed.exit_code == 0 and "queued again" in replayed.output
    asyncio.run(fail_once_then_drain(enqueue=False))
    assert job_id.group(1) not in at(database_url, "jobs", "list").output
    again = at(database_url, "jobs", "replay", job_id.group(1))
    assert again.exit_code == 2 and "not_replayable" in again.output
