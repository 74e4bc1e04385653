"""Pools are opened and their connections primed before traffic (decision 0011)."""

from __future__ import annotations

import asyncpg
from asyncpg.connection import LoggedQuery

from leadflood.core.db import Database, libpq_url
from leadflood.core.uow import single_statements

_ENUM_STATEMENT = "SELECT NULL::lead_status, NULL::delivery_status, NULL::attempt_outcome"


def _introspections(queries: list[str]) -> int:
    return sum("typeinfo_tree" in q for q in queries)


async def test_warm_up_opens_the_hot_path_pool(database_url: str) -> None:
    db = Database(database_url, pool_size=6)
    try:
        await db.warm_up(5)
        pool = db._raw_pool
        assert pool is not None
        assert pool.get_size() >= 5
        assert pool.get_idle_size() >= 5
    finally:
        await db.dispose()


async def test_pooled_connections_know_the_enum_types_before_first_use(
    database_url: str,
) -> None:
    db = Database(database_url, pool_size=4)
    try:
        await db.warm_up(3)
        seen: list[str] = []

        def record(entry: LoggedQuery) -> None:
            seen.append(entry.query)

        async with db.pool_connection() as conn:
            conn.add_query_logger(record)
            try:
                await conn.fetch(_ENUM_STATEMENT)
            finally:
                conn.remove_query_logger(record)
        assert seen, "the query logger saw nothing: the check itself is broken"
        assert _introspections(seen) == 0
    finally:
        await db.dispose()


async def test_pooled_connections_speak_json_as_python_values(database_url: str) -> None:
    """One codec, registered when a pooled connection opens: jsonb reads as Python values
    (no JSON-decoding fallbacks in repositories); a parameter may be a Python value or,
    as pgqueuer sends its headers, JSON text."""
    db = Database(database_url, pool_size=2)
    try:
        async with single_statements(db) as tx:
            assert await tx.fetchval("""SELECT '{"a": [1, 2]}'::jsonb""") == {"a": [1, 2]}
            assert await tx.fetchval("SELECT $1::jsonb", {"b": None}) == {"b": None}
            assert await tx.fetchval("SELECT $1::jsonb", '{"c": "text"}') == {"c": "text"}
            assert await tx.fetchval("SELECT $1::json", [1, "x"]) == [1, "x"]
    finally:
        await db.dispose()


async def test_an_unprimed_connection_would_introspect(database_url: str) -> None:
    """The control: without priming, the same statement does run the introspection."""
    conn = await asyncpg.connect(libpq_url(database_url))
    try:
        seen: list[str] = []
        conn.add_query_logger(lambda record: seen.append(record.query))
        await conn.fetch(_ENUM_STATEMENT)
        assert _introspections(seen) >= 1
    finally:
        await conn.close()


async def test_the_served_app_warms_its_pools_before_the_first_request(
    database_url: str,
) -> None:
    from leadflood.app import create_app
    from leadflood.core.runtime import build_runtime
    from tests.conftest import make_settings

    runtime = build_runtime(make_settings(database_url, db_pool_size=3), database_url)
    app = create_app(runtime, warm_up=True)
    async with app.router.lifespan_context(app):
        pool = runtime.db._raw_pool
        assert pool is not None
        assert pool.get_idle_size() >= 3
