"""Backup and restore round trip a populated database: the same row counts and the same
leads checksum; a damaged file is refused and changes nothing."""

from __future__ import annotations

import asyncio
import subprocess
import sys

from leadflood.core import backup as backups
from leadflood.core import migrate
from leadflood.core.db import Database
from leadflood.core.uow import unit_of_work
from tests.factories import make_buyer, make_lead, make_world
from tests.pg import recreate_database, server_url


async def fresh(name: str) -> str:
    """A migrated database of its own (made off the event loop: the helpers run theirs)."""

    def make() -> str:
        url = recreate_database(server_url(), name)
        migrate.upgrade(url)
        return url

    return await asyncio.to_thread(make)


async def populate(url: str) -> None:
    db = Database(url, pool_size=2)
    try:
        async with unit_of_work(db) as conn:
            world = await make_world(conn)
            await make_buyer(conn, world, name="Acme <b>&</b>")
            for n in range(25):
                await make_lead(conn, world, email=f"l{n}@example.com", first_name="Zoë\u00e9")
    finally:
        await db.dispose()


async def test_a_backup_restores_into_an_empty_database_and_over_a_changed_one(tmp_path) -> None:
    source = await fresh("leadflood_backup_source")
    await populate(source)
    before = await backups.manifest(source)
    assert before.tables["public.leads"] == 25

    dump = await backups.backup(source, tmp_path)
    assert dump.exists() and dump.with_suffix(".dump.json").exists()
    assert backups.verify(dump) > 10

    target = await asyncio.to_thread(recreate_database, server_url(), "leadflood_backup_target")
    restored = await backups.restore(target, dump)
    assert restored.tables == before.tables
    assert restored.leads_checksum == before.leads_checksum

    # Over a database that changed since: back to the backup's state exactly.
    await populate(target)
    assert (await backups.manifest(target)).tables["public.leads"] == 50
    again = await backups.restore(target, dump)
    assert again.tables == before.tables and again.leads_checksum == before.leads_checksum


async def test_a_damaged_backup_is_refused_and_changes_nothing(tmp_path) -> None:
    url = await fresh("leadflood_backup_damaged")
    await populate(url)
    dump = await backups.backup(url, tmp_path)
    before = await backups.manifest(url)
    broken = tmp_path / "broken.dump"
    broken.write_bytes(dump.read_bytes()[: len(dump.read_bytes()) // 3])
    try:
        await backups.restore(url, broken)
    except backups.BackupError as exc:
        assert "backup" in str(exc) or "pg_restore" in str(exc)
    else:
        raise AssertionError("a truncated backup was restored")
    after = await backups.manifest(url)
    assert after.tables == before.tables and after.leads_checksum == before.leads_checksum
    # Retention keeps the newest.
    await backups.backup(url, tmp_path)
    await backups.backup(url, tmp_path)
    removed = backups.prune(tmp_path, 2)
    assert len(removed) == 1 and len(list(tmp_path.glob("leadflood-*.dump"))) == 2


def test_the_cli_backs_up_and_restores(tmp_path) -> None:
    url = recreate_database(server_url(), "leadflood_backup_cli")
    migrate.upgrade(url)
    env = {"LEADFLOOD_DATABASE_URL": url, "PATH": "/usr/bin:/bin", "LEADFLOOD_LOG_JSON": "false"}
    cmd = [sys.executable, "-m", "leadflood.cli"]
    made = subprocess.run(
        [*cmd, "backup", "--to", str(tmp_path), "--keep", "3"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert made.returncode == 0, made.stderr
    (dump,) = tmp_path.glob("leadflood-*.dump")
    back = subprocess.run(
        [*cmd, "restore", str(dump), "--yes"], capture_output=True, text=True, env=env, timeout=120
    )
    assert back.returncode == 0, back.stderr
    assert "verified" in back.stdout
    missing = subprocess.run(
        [*cmd, "restore", str(tmp_path / "nope.dump"), "--yes"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert missing.returncode == 1 and "restore_failed" in missing.stderr


async def test_a_worker_backs_up_on_its_timer_once_per_interval_with_retention(
    database_url, tmp_path
) -> None:
    import os
    import time

    from leadflood.core.jobs import BACKUP, periodic_jobs
    from leadflood.core.runtime import build_runtime
    from tests.conftest import drain_jobs, make_settings, truncate_all

    settings = make_settings(
        database_url, backup_interval_hours=24, backup_dir=tmp_path, backup_keep=1
    )
    assert periodic_jobs(settings)[BACKUP] == 24 * 3600
    assert BACKUP not in periodic_jobs(make_settings(database_url))
    runtime = build_runtime(settings, database_url)
    await truncate_all(runtime)

    async def run_once() -> list:
        async with unit_of_work(runtime.db) as tx:
            await tx.enqueue(BACKUP, {})
        await drain_jobs(runtime)
        return sorted(tmp_path.glob("leadflood-*.dump"))

    try:
        first = await run_once()
        assert len(first) == 1 and backups.verify(first[0]) > 0
        assert await run_once() == first  # this interval's backup exists: skipped
        day_ago = time.time() - 2 * 86400
        os.utime(first[0], (day_ago, day_ago))
        second = await run_once()
        assert len(second) == 1 and second != first  # a new one; the old one pruned
        assert second[0].with_suffix(".dump.json").exists()
        assert not first[0].with_suffix(".dump.json").exists()
    finally:
        await runtime.close()
