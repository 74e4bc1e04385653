"""Apply the Alembic migrations programmatically (CLI, demo, tests)."""

from __future__ import annotations

import asyncio
from pathlib import Path

from alembic import command
from alembic.config import Config


def migrations_dir() -> Path:
    package = Path(__file__).resolve().parents[1]
    for candidate in (package / "_migrations", package.parents[1] / "migrations"):
        if (candidate / "env.py").exists():
            return candidate
    raise RuntimeError("migrations directory not found")


def alembic_config(database_url: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(migrations_dir()))
    cfg.attributes["database_url"] = database_url
    return cfg


def _in_thread(fn, *args) -> None:
    """env.py calls asyncio.run(); keep it off any running event loop."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        fn(*args)
        return
    import threading

    errors: list[BaseException] = []

    def target() -> None:
        try:
            fn(*args)
        except BaseException as exc:
            errors.append(exc)

    thread = threading.Thread(target=target)
    thread.start()
    thread.join()
    if errors:
        raise errors[0]


def upgrade(database_url: str, revision: str = "head") -> None:
    _in_thread(command.upgrade, alembic_config(database_url), revision)


def downgrade(database_url: str, revision: str) -> None:
    _in_thread(command.downgrade, alembic_config(database_url), revision)


async def current(database_url: str) -> str | None:
    import asyncpg

    from leadflood.core.db import libpq_url

    conn = await asyncpg.connect(libpq_url(database_url))
    try:
        if not await conn.fetchval("SELECT to_regclass('alembic_version') IS NOT NULL"):
            return None
        return await conn.fetchval("SELECT version_num FROM alembic_version")
    finally:
        await conn.close()


def move_to(database_url: str, target: str) -> str:
    """Upgrade or downgrade to `target` (a revision id, or head); which way it went."""
    now = asyncio.run(current(database_url)) or ""
    want = head() if target == "head" else target
    if want.isdigit() and now.isdigit() and int(want) < int(now):
        downgrade(database_url, want)
        return "downgraded"
    upgrade(database_url, want)
    return "upgraded"


def head() -> str:
    """The newest revision the code has."""
    import sys

    from alembic.script import ScriptDirectory

    # The revisions import their helper module from beside them (as env.py arranges).
    if str(migrations_dir()) not in sys.path:
        sys.path.insert(0, str(migrations_dir()))
    return ScriptDirectory.from_config(alembic_config("")).get_current_head() or ""
