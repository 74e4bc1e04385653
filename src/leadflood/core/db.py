"""The connection pool (asyncpg) under the units of work of core/uow.py."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

import asyncpg
import orjson
import structlog

log = structlog.get_logger("leadflood.db")


def sqlalchemy_url(url: str) -> str:
    """Accept libpq-style URLs and select the asyncpg dialect."""
    for prefix in ("postgresql+asyncpg://", "postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+asyncpg://" + url[len(prefix) :]
    raise ValueError("database URL must be a postgresql:// URL")


def libpq_url(url: str) -> str:
    return url.replace("postgresql+asyncpg://", "postgresql://", 1)


class Database:
    """Owns the connection pool; `core.uow` opens units of work on it."""

    def __init__(self, url: str, *, pool_size: int = 20) -> None:
        self.url = libpq_url(url)
        self._pool_size = pool_size
        self._raw_pool: asyncpg.Pool | None = None
        self._raw_pool_lock = asyncio.Lock()
        self._wake_pending = False
        self._waking: asyncio.Task[None] | None = None

    @asynccontextmanager
    async def pool_connection(self) -> AsyncIterator[asyncpg.Connection]:
        """A pooled connection in autocommit: for `core.uow` (the units of work) only."""
        pool = self._raw_pool or await self._open_raw_pool()
        async with pool.acquire() as conn:
            yield conn

    async def _open_raw_pool(self) -> asyncpg.Pool:
        async with self._raw_pool_lock:
            if self._raw_pool is None:
                self._raw_pool = await asyncpg.create_pool(
                    self.url,
                    min_size=1,
                    max_size=self._pool_size,
                    server_settings={"application_name": "leadflood"},
                    # Hot paths leave no session state (no LISTEN, SET or advisory
                    # locks), so skip asyncpg's per-release reset round trip.
                    reset=_no_reset,
                    init=_init_connection,
                )
        return self._raw_pool

    async def warm_up(self, connections: int) -> None:
        """Open `connections` pooled connections before taking traffic.

        A cold pool opens them under the first burst instead, each paying connection
        setup and type introspection (20-40 ms apiece on 2 cores): in bench/e2e.py that
        was the whole p95, spent on the first second's leads (decision 0011).
        """
        pool = self._raw_pool or await self._open_raw_pool()
        held = await asyncio.gather(*(pool.acquire() for _ in range(connections)))
        await asyncio.gather(*(pool.release(conn) for conn in held))

    async def ping(self) -> bool:
        try:
            async with self.pool_connection() as conn:
                await conn.fetchval("SELECT 1")
            return True
        except (OSError, asyncpg.PostgresError, Exception):
            return False

    async def listen_connection(self) -> asyncpg.Connection:
        """A dedicated connection outside the pool: the job queue LISTENs on its own."""
        return await asyncpg.connect(self.url)

    def wake_workers(self) -> None:
        """Tell the workers (every process LISTENing) that jobs were committed.

        pgqueuer's table trigger notified inside each writing transaction, and PostgreSQL
        serializes notifying commits on one lock held through the commit's WAL flush:
        every enqueue, pick and completion queued behind the others' fsyncs (decision
        0024). This NOTIFY runs in a transaction of its own that writes nothing, so the
        lock is held for microseconds; one is in flight at a time and the wake-ups asked
        meanwhile fold into the next. A lost wake-up costs latency, never a job: workers
        poll every few seconds anyway.
        """
        self._wake_pending = True
        if self._waking is None or self._waking.done():
            self._waking = asyncio.get_running_loop().create_task(self._notify_workers())

    async def _notify_workers(self) -> None:
        while self._wake_pending:
            # Let the commits finishing in this turn of the loop ask too: one NOTIFY.
            await asyncio.sleep(0)
            self._wake_pending = False
            try:
                async with self.pool_connection() as conn:
                    await conn.execute(_WAKE, _wake_event())
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
                log.warning("wake_workers_failed", error=type(exc).__name__)
                return

    async def dispose(self) -> None:
        if self._waking is not None and not self._waking.done():
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._waking, timeout=5)
        if self._raw_pool is not None:
            await self._raw_pool.close()
            self._raw_pool = None


async def _no_reset(conn: asyncpg.Connection) -> None:
    return None


# pgqueuer's listener reads this as a table_changed_event and re-polls the queue.
_WAKE = "SELECT pg_notify('ch_pgqueuer', $1)"


def _wake_event() -> str:
    return orjson.dumps(
        {
            "channel": "ch_pgqueuer",
            "operation": "insert",
            "sent_at": datetime.now(UTC).isoformat(),
            "table": "pgqueuer",
            "type": "table_changed_event",
        }
    ).decode()


_ENUM_TYPES = """
SELECT t.oid::regtype::text FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
WHERE t.typtype = 'e' AND n.nspname IN ('public', 'outreach')
"""


async def _init_connection(conn: asyncpg.Connection) -> None:
    """JSON in and out as Python values, enums introspected once."""
    await register_json_codecs(conn)
    await _prime_type_codecs(conn)


async def register_json_codecs(conn: asyncpg.Connection) -> None:
    """json/jsonb results decode to Python values; parameters take Python values, and a
    `str` stays JSON text as asyncpg passes it by default (pgqueuer sends its headers so,
    and hot paths send bytes they encoded once)."""
    for name in ("json", "jsonb"):
        await conn.set_type_codec(
            name, schema="pg_catalog", encoder=_encode_json, decoder=orjson.loads, format="text"
        )


def _encode_json(value: Any) -> str:
    return value if isinstance(value, str) else orjson.dumps(value, default=str).decode()


async def _prime_type_codecs(conn: asyncpg.Connection) -> None:
    """Have asyncpg introspect every enum type once, when the connection opens.

    Otherwise each connection's first statement touching an enum stops for that
    introspection query, and on a fresh pool they all do it at once.
    """
    names = [row[0] for row in await conn.fetch(_ENUM_TYPES)]
    if names:
        await conn.fetch("SELECT " + ", ".join(f"NULL::{name}" for name in names))


def constraint_violation(exc: Exception) -> tuple[str, str, str | None]:
    """(kind, message, constraint) of a database integrity error, for a stable API error.

    kind: unique | foreign_key | check | not_null | other.
    """
    cause = getattr(getattr(exc, "orig", None), "__cause__", None) or exc
    sqlstate = getattr(cause, "sqlstate", None)
    kind = {
        "23505": "unique",
        "23503": "foreign_key",
        "23514": "check",
        "23502": "not_null",
    }.get(str(sqlstate), "other")
    constraint = getattr(cause, "constraint_name", None)
    # asyncpg's `detail` names the key and value ("Key (slug)=(x) already exists."):
    # safe to show for configuration tables, which hold no secrets in keys.
    message = getattr(cause, "detail", None) or getattr(cause, "message", None) or kind
    return kind, str(message), constraint
