"""Ingestion's in-process source cache and its NOTIFY invalidation (decision 0013)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import httpx
import pytest

from leadflood.app import create_app
from leadflood.core.db import libpq_url
from leadflood.core.security import hash_api_key, new_api_key
from leadflood.core.uow import unit_of_work
from leadflood.ingestion import repository
from leadflood.ingestion.source_cache import SourceCache
from tests.factories import make_world
from tests.sql import run

LEAD = {"first_name": "Ana", "phone": "(602) 253-1234", "postal_code": "85001"}


class CountingLoader:
    def __init__(self, value: object) -> None:
        self.value = value
        self.calls = 0

    async def __call__(self) -> object:
        self.calls += 1
        return self.value


async def _wait_for(predicate, timeout_s: float = 5.0) -> None:  # type: ignore[no-untyped-def]
    deadline = asyncio.get_running_loop().time() + timeout_s
    while not predicate():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.01)


@contextlib.asynccontextmanager
async def listening(cache: SourceCache, url: str) -> AsyncIterator[asyncio.Event]:
    stop = asyncio.Event()
    task = asyncio.create_task(cache.listen(libpq_url(url), stop, retry_s=0.05))
    try:
        await _wait_for(lambda: cache.live)
        yield stop
    finally:
        stop.set()
        await asyncio.wait_for(task, timeout=5)


async def test_without_a_listener_every_lookup_reads_the_database() -> None:
    cache = SourceCache()
    load = CountingLoader("binding")
    for _ in range(3):
        assert await cache.get("k", load) == "binding"
    assert load.calls == 3


async def test_with_a_listener_hits_are_served_from_memory(database_url: str) -> None:
    cache = SourceCache()
    async with listening(cache, database_url):
        load = CountingLoader("binding")
        for _ in range(3):
            assert await cache.get("k", load) == "binding"
        assert load.calls == 1
        missing = CountingLoader(None)
        await cache.get("unknown", missing)
        await cache.get("unknown", missing)
        assert missing.calls == 2, "not-found results must not be remembered"
    assert not cache.live


async def test_expired_entries_are_read_again(database_url: str) -> None:
    cache = SourceCache(ttl_s=0.05)
    async with listening(cache, database_url):
        load = CountingLoader("binding")
        await cache.get("k", load)
        await asyncio.sleep(0.1)
        await cache.get("k", load)
        assert load.calls == 2


async def test_a_change_announced_during_a_read_is_not_cached(database_url: str) -> None:
    cache = SourceCache()
    async with listening(cache, database_url):

        async def load_then_change() -> str:
            cache.invalidate()  # the NOTIFY arrives while this read is in flight
            return "possibly stale"

        await cache.get("k", load_then_change)
        load = CountingLoader("fresh")
        assert await cache.get("k", load) == "fresh" and load.calls == 1


async def test_a_committed_change_to_sources_offers_or_markets_clears_it(
    runtime, database_url: str
) -> None:
    async with unit_of_work(runtime.db) as conn:
        world = await make_world(conn)
    cache = SourceCache()
    async with listening(cache, database_url):
        for table, column, key in (
            ("sources", "name", world.source_id),
            ("offers", "name", world.offer_id),
            ("markets", "name", world.market_id),
        ):
            load = CountingLoader("binding")
            await cache.get(table, load)
            before = cache.generation
            async with unit_of_work(runtime.db) as conn:
                await run(
                    conn,
                    f"UPDATE {table} SET {column} = {column} || '!' WHERE id = :id",
                    {"id": key},
                )
            await _wait_for(lambda before=before: cache.generation > before)
            await cache.get(table, load)
            assert load.calls == 2, table


async def test_a_lost_listener_stops_caching_until_it_reconnects(
    runtime, database_url: str
) -> None:
    cache = SourceCache()
    async with listening(cache, database_url):
        load = CountingLoader("binding")
        await cache.get("k", load)
        async with runtime.db.pool_connection() as conn:
            await conn.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE query LIKE 'LISTEN%' AND pid <> pg_backend_pid() "
                "AND datname = current_database()"
            )
        await _wait_for(lambda: not cache.live)
        await cache.get("k", load)
        assert load.calls == 2, "a stale entry must not survive the lost connection"
        await _wait_for(lambda: cache.live)
        await cache.get("k", load)
        await cache.get("k", load)
        assert load.calls == 3


@pytest.fixture
async def served_client(runtime) -> AsyncIterator[tuple[httpx.AsyncClient, SourceCache]]:
    """The app with its lifespan running, so its source cache is listening."""
    app = create_app(runtime)
    async with app.router.lifespan_context(app):
        cache: SourceCache = app.state.source_cache
        await _wait_for(lambda: cache.live)
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
            yield c, cache


async def _change(runtime, cache: SourceCache, sql: str, **params) -> None:
    before = cache.generation
    async with unit_of_work(runtime.db) as conn:
        await run(conn, sql, params)
    await _wait_for(lambda: cache.generation > before)


async def test_rotated_key_and_deactivation_take_effect_through_the_cache(
    served_client, runtime
) -> None:
    client, cache = served_client
    async with unit_of_work(runtime.db) as conn:
        world = await make_world(conn, source_api_key=True)
    old_key = world.extra["api_key"]
    body = {**LEAD, "source_id": str(world.source_id)}

    def post(key: str, n: int):  # type: ignore[no-untyped-def]
        return client.post(
            "/api/leads",
            json={**body, "idempotency_key": f"k{n}"},
            headers={"Authorization": f"Bearer {key}"},
        )

    assert (await post(old_key, 1)).status_code == 201
    assert (await post(old_key, 2)).status_code == 201  # served from the cache

    new_key = new_api_key()
    await _change(
        runtime,
        cache,
        "UPDATE sources SET api_key_hash = :h WHERE id = :id",
        h=hash_api_key(new_key),
        id=world.source_id,
    )
    refused = await post(old_key, 3)
    assert refused.status_code == 401
    assert refused.json()["error"]["code"] == "unauthorized_source"
    assert (await post(new_key, 4)).status_code == 201

    await _change(
        runtime, cache, "UPDATE sources SET active = false WHERE id = :id", id=world.source_id
    )
    gone = await post(new_key, 5)
    assert gone.status_code == 400 and gone.json()["error"]["code"] == "invalid_source"


async def test_the_served_app_reads_a_source_once(served_client, runtime, monkeypatch) -> None:
    client, cache = served_client
    before = cache.generation
    async with unit_of_work(runtime.db) as conn:
        world = await make_world(conn)
    # The new source's own notification may still be on its way: once it has arrived, it
    # can no longer drop the first read's entry (which made this test flaky).
    await _wait_for(lambda: cache.generation > before)
    reads: list[object] = []
    real = repository.source_by_id

    async def counted(conn, source_id):  # type: ignore[no-untyped-def]
        reads.append(source_id)
        return await real(conn, source_id)

    monkeypatch.setattr(repository, "source_by_id", counted)
    for n in range(5):
        response = await client.post(
            "/api/leads",
            json={**LEAD, "source_id": str(world.source_id), "idempotency_key": f"r{n}"},
        )
        assert response.status_code == 201
    assert reads == [world.source_id]


async def test_an_unreachable_database_leaves_it_off_and_retrying() -> None:
    from tests.live import free_port

    cache = SourceCache()
    stop = asyncio.Event()
    url = f"postgresql://postgres@127.0.0.1:{free_port()}/nowhere"
    task = asyncio.create_task(cache.listen(url, stop, retry_s=0.02))
    await asyncio.sleep(0.2)  # several failed attempts
    assert not task.done(), "a failed connection must be retried, not end the listener"
    load = CountingLoader("binding")
    await cache.get("k", load)
    await cache.get("k", load)
    assert not cache.live and load.calls == 2
    stop.set()
    await asyncio.wait_for(task, timeout=2)
