"""Shared fixtures: a real PostgreSQL, migrated once, cleaned before each test."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator

import httpx
import pytest

from leadflood.app import create_app
from leadflood.core import migrate
from leadflood.core.db import Database
from leadflood.core.jobs import run_worker
from leadflood.core.runtime import Runtime, build_runtime
from leadflood.core.settings import Environment, Settings
from leadflood.core.uow import Tx, unit_of_work
from tests.pg import recreate_database, server_url
from tests.sql import run


@pytest.fixture(scope="session")
def pg_admin_url() -> str:
    return server_url()


@pytest.fixture(scope="session")
def database_url(pg_admin_url: str) -> str:
    name = f"leadflood_test_{os.getpid()}"
    url = recreate_database(pg_admin_url, name)
    migrate.upgrade(url)
    return url


def make_settings(database_url: str, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "env": Environment.test,
        "database_url": database_url,
        "db_pool_size": 50,
        "log_json": True,
    }
    values.update(overrides)
    return Settings(**values)  # type: ignore[arg-type]


_TABLES_SQL = """
SELECT string_agg(format('%I.%I', schemaname, tablename), ', ')
FROM pg_tables
WHERE schemaname NOT IN ('pg_catalog', 'information_schema')
  AND tablename NOT IN ('alembic_version')
"""


async def truncate_all(rt: Runtime) -> None:
    """Empty every table (the migration bookkeeping excepted)."""
    async with unit_of_work(rt.db) as conn:
        tables = (await run(conn, _TABLES_SQL)).scalar()
        await run(conn, f"TRUNCATE {tables} RESTART IDENTITY CASCADE")


@pytest.fixture
async def runtime(database_url: str) -> AsyncIterator[Runtime]:
    rt = build_runtime(make_settings(database_url), database_url)
    await truncate_all(rt)
    try:
        yield rt
    finally:
        await rt.close()


@pytest.fixture
async def tx(database_url: str) -> AsyncIterator[Tx]:
    """A unit of work that is rolled back after the test: for tests of services and SQL
    that need no other process to see their data. They leave nothing behind, so they need
    no TRUNCATE, and must not assume an empty database (other tests' rows may be there).
    Tests whose data a worker, a served app or a browser must see use `runtime`."""
    db = Database(database_url, pool_size=1)
    try:
        async with db.pool_connection() as conn:
            transaction = conn.transaction()
            await transaction.start()
            try:
                yield Tx(conn)
            finally:
                await transaction.rollback()
    finally:
        await db.dispose()


@pytest.fixture
async def client(runtime: Runtime) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(runtime)
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
        yield c


PASSWORD = "correct horse battery"


async def auth_headers(
    client: httpx.AsyncClient, runtime: Runtime, role: str = "admin", email: str | None = None
) -> dict[str, str]:
    """Create a user with `role`, log in through the API, return its bearer header."""
    from leadflood.auth.service import create_user

    email = email or f"{role}@example.com"
    async with unit_of_work(runtime.db) as conn:
        await create_user(conn, email=email, password=PASSWORD, role=role)
    response = await client.post("/v1/auth/login", json={"email": email, "password": PASSWORD})
    assert response.status_code == 200, response.text
    return {"authorization": f"Bearer {response.json()['access_token']}"}


@pytest.fixture
async def admin(client: httpx.AsyncClient, runtime: Runtime) -> dict[str, str]:
    return await auth_headers(client, runtime, "admin")


async def drain_jobs(runtime: Runtime, concurrency: int = 4) -> None:
    """Run a worker until no job is due, as a deployment's worker would."""
    await run_worker(runtime, concurrency=concurrency, drain=True)


@pytest.fixture
def cli():
    """Invoke the `leadflood` CLI in-process. Settings are re-read from the environment
    (set it with monkeypatch first), and logging is pointed back at stderr afterwards:
    the CLI configures structlog with the runner's captured stream, closed after invoke,
    and every later log line would fail on it."""
    from typer.testing import CliRunner

    from leadflood.cli import app
    from leadflood.core.logging import configure_logging
    from leadflood.core.settings import get_settings

    get_settings.cache_clear()
    try:
        yield lambda *args: CliRunner().invoke(app, list(args))
    finally:
        get_settings.cache_clear()
        configure_logging("INFO", True)
