"""Source bindings cached in-process, dropped whenever the database says they changed.

Classifying a lead reads its source, offer and market: one round trip per request that
was the largest single cost left on the ingestion hot path (decision 0013). A trigger on
those tables NOTIFYs `leadflood_sources_changed` on commit; `listen()` holds a dedicated
connection on that channel and clears the cache on every notification.

The cache only serves hits while that listener is connected. Without it (tests that do not
run the app's lifespan, a lost connection) every lookup goes to the database, so a
deactivated source or a rotated key is never honoured from memory for longer than the
notification takes to arrive. Entries also expire after `ttl_s`, in case a connection dies
without the client noticing.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Hashable
from typing import TypeVar

import asyncpg
import structlog

log = structlog.get_logger("leadflood.ingestion")

CHANNEL = "leadflood_sources_changed"
T = TypeVar("T")


class SourceCache:
    def __init__(self, *, ttl_s: float = 10.0, max_entries: int = 10_000) -> None:
        self.ttl_s = ttl_s
        self.max_entries = max_entries
        self.generation = 0
        self._live = False
        self._entries: dict[Hashable, tuple[object, float]] = {}

    @property
    def live(self) -> bool:
        return self._live

    async def get(self, key: Hashable, load: Callable[[], Awaitable[T | None]]) -> T | None:
        """The cached value for `key`, else `load()`'s, kept only when something was
        found (unknown ids or hosts are not remembered: they could fill the cache)."""
        if not self._live:
            return await load()
        now = time.monotonic()
        hit = self._entries.get(key)
        if hit is not None and hit[1] > now:
            return hit[0]  # type: ignore[return-value]
        generation = self.generation
        value = await load()
        # A change announced while we were reading may be older than what we read.
        if value and self._live and generation == self.generation:
            if len(self._entries) >= self.max_entries:
                self._entries.clear()
            self._entries[key] = (value, now + self.ttl_s)
        return value

    def invalidate(self) -> None:
        self.generation += 1
        self._entries.clear()

    async def listen(self, url: str, stop: asyncio.Event, *, retry_s: float = 1.0) -> None:
        """Keep a LISTEN connection until `stop`; serve from memory only while it is up."""
        while not stop.is_set():
            try:
                await self._listen_once(url, stop)
            except Exception as exc:  # any failure: serve from the database, retry later
                log.warning("source_cache_listener_failed", error=type(exc).__name__)
            if not stop.is_set():
                await _first(stop.wait(), asyncio.sleep(retry_s))

    async def _listen_once(self, url: str, stop: asyncio.Event) -> None:
        lost = asyncio.Event()
        conn = await asyncpg.connect(url)
        try:
            conn.add_termination_listener(lambda _conn: lost.set())
            await conn.add_listener(CHANNEL, lambda *_args: self.invalidate())
            # Anything cached before this connection may have missed a notification.
            self.invalidate()
            self._live = True
            await _first(stop.wait(), lost.wait())
        finally:
            self._live = False
            self.invalidate()
            if not conn.is_closed():
                await conn.close()


async def _first(*awaitables: Awaitable[object]) -> None:
    tasks = [asyncio.ensure_future(a) for a in awaitables]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()
