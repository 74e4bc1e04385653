"""Least-privilege roles on a real server: migrations as the owner, the whole pipeline as
the app's role, which cannot change the schema."""

from __future__ import annotations

import asyncio
import secrets
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest

from leadflood.core import migrate
from leadflood.core.roles import grant_app_role
from leadflood.core.runtime import build_runtime
from leadflood.core.uow import unit_of_work
from tests.buyer_server import BuyerServer
from tests.conftest import drain_jobs, make_settings
from tests.factories import POSTED_LEAD, make_buyer, make_world
from tests.pg import server_url, with_database


def as_user(url: str, user: str, password: str) -> str:
    parts = urlsplit(url)
    host = parts.netloc.rsplit("@", 1)[-1]
    return urlunsplit(parts._replace(netloc=f"{user}:{password}@{host}"))


async def setup_roles(admin: str, database: str, owner: str, app: str, password: str) -> None:
    conn = await asyncpg.connect(admin)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
        for role in (owner, app):
            await conn.execute(f"DROP ROLE IF EXISTS {role}")
            await conn.execute(f"CREATE ROLE {role} LOGIN PASSWORD '{password}'")
        await conn.execute(f'CREATE DATABASE "{database}" OWNER {owner}')
    finally:
        await conn.close()


async def drop_roles(admin: str, database: str, roles: tuple[str, ...]) -> None:
    conn = await asyncpg.connect(admin)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
        for role in roles:
            await conn.execute(f"DROP ROLE IF EXISTS {role}")
    finally:
        await conn.close()


async def test_the_app_role_runs_the_pipeline_and_cannot_change_the_schema() -> None:
    admin = server_url()
    tag = secrets.token_hex(3)
    owner, app, password = f"lf_owner_{tag}", f"lf_app_{tag}", secrets.token_hex(12)
    database = f"leadflood_roles_{tag}"
    await setup_roles(admin, database, owner, app, password)
    owner_url = as_user(with_database(admin, database), owner, password)
    app_url = as_user(with_database(admin, database), app, password)
    try:
        await asyncio.to_thread(migrate.upgrade, owner_url)
        assert await grant_app_role(owner_url, app) == 9
        # `serve` migrates at start: at head that is a no-op the app's role may run.
        await asyncio.to_thread(migrate.upgrade, app_url)

        runtime = build_runtime(make_settings(app_url), app_url)
        try:
            with BuyerServer() as buyers:
                async with unit_of_work(runtime.db) as conn:
                    world = await make_world(conn)
                    await make_buyer(conn, world, webhook_url=buyers.url())
                from httpx import ASGITransport, AsyncClient

                from leadflood.app import create_app

                transport = ASGITransport(app=create_app(runtime))
                async with AsyncClient(transport=transport, base_url="http://t") as http:
                    posted = await http.post(
                        "/api/leads",
                        json={"source_id": str(world.source_id), **POSTED_LEAD},
                    )
                assert posted.status_code == 201, posted.text
                await drain_jobs(runtime)
                assert buyers.count() == 1
        finally:
            await runtime.close()

        conn = await asyncpg.connect(app_url)
        try:
            for ddl in (
                "CREATE TABLE intruder (id int)",
                "ALTER TABLE leads ADD COLUMN intruder text",
                "DROP TABLE leads",
                "CREATE INDEX intruder_idx ON leads (email)",
            ):
                with pytest.raises(asyncpg.InsufficientPrivilegeError):
                    await conn.execute(ddl)
            assert await conn.fetchval("SELECT count(*) FROM leads") == 1
        finally:
            await conn.close()
        with pytest.raises(ValueError):
            await grant_app_role(owner_url, "app; DROP TABLE leads")
    finally:
        await drop_roles(admin, database, (owner, app))
