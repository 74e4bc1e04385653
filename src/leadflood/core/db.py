"""Async engine and the transaction boundary used by requests and jobs."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import asyncpg
from sqlalchemy import event, text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine


def sqlalchemy_url(url: str) -> str:
    """Accept libpq-style URLs and select the asyncpg dialect."""
    for prefix in ("postgresql+asyncpg://", "postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+asyncpg://" + url[len(prefix) :]
    raise ValueError("database URL must be a postgresql:// URL")


def libpq_url(url: str) -> str:
    return url.replace("postgresql+asyncpg://", "postgresql://", 1)


class Database:
    """Owns the connection pool; `transaction()` is the commit boundary."""

    def __init__(self, url: str, *, pool_size: int = 20, max_overflow: int = 10) -> None:
        self.url = libpq_url(url)
        self._pool_size = pool_size
        self._raw_pool: asyncpg.Pool | None = None
        self._raw_pool_lock = asyncio.Lock()
        self.engine: AsyncEngine = create_async_engine(
            sqlalchemy_url(url),
            pool_size=pool_size,
            max_overflow=max_overflow,
            pool_pre_ping=False,
            # A failed statement's parameters (a new user's password hash, a lead's
            # PII) must never reach an error message, a log line or the CLI's output.
            hide_parameters=True,
            connect_args={"server_settings": {"application_name": "leadflood"}},
        )
        event.listen(self.engine.sync_engine, "connect", _prime_engine_connection)

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncConnection]:
        async with self.engine.begin() as conn:
            yield conn

    @asynccontextmanager
    async def connect(self) -> AsyncIterator[AsyncConnection]:
        async with self.engine.connect() as conn:
            yield conn

    @asynccontextmanager
    async def raw(self) -> AsyncIterator[asyncpg.Connection]:
        """A pooled asyncpg connection in autocommit, for hot paths (decision 0003).

        Each statement is its own transaction; use `raw.transaction()` for more.
        """
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
                    init=_prime_type_codecs,
                )
        return self._raw_pool

    async def warm_up(self, connections: int) -> None:
        """Open `connections` pooled hot-path connections (and a few ORM ones) before
        taking traffic.

        A cold pool opens them under the first burst instead, each paying connection
        setup and type introspection (20-40 ms apiece on 2 cores): in bench/e2e.py that
        was the whole p95, spent on the first second's leads (decision 0011).
        """
        pool = self._raw_pool or await self._open_raw_pool()
        held = await asyncio.gather(*(pool.acquire() for _ in range(connections)))
        await asyncio.gather(*(pool.release(conn) for conn in held))
        async with contextlib.AsyncExitStack() as stack:
            await asyncio.gather(
                *(
                    stack.enter_async_context(self.engine.connect())
                    for _ in range(min(connections, _WARM_ENGINE_CONNECTIONS))
                )
            )

    async def ping(self) -> bool:
        try:
            async with self.engine.connect() as conn:
                await conn.execute(text("SELECT 1"))
            return True
        except (OSError, asyncpg.PostgresError, Exception):
            return False

    async def raw_connection(self) -> asyncpg.Connection:
        """A dedicated asyncpg connection (the job queue listens on its own)."""
        return await asyncpg.connect(self.url)

    async def dispose(self) -> None:
        if self._raw_pool is not None:
            await self._raw_pool.close()
            self._raw_pool = None
        await self.engine.dispose()


async def raw_asyncpg(conn: AsyncConnection) -> asyncpg.Connection:
    """The driver connection under `conn`, with its transaction begun.

    SQLAlchemy begins the asyncpg transaction lazily on the first statement;
    work done on the raw connection must never run outside it.
    """
    fairy = await conn.get_raw_connection()
    raw: asyncpg.Connection = fairy.driver_connection  # type: ignore[assignment]
    if conn.in_transaction() and not raw.is_in_transaction():
        await conn.execute(text("SELECT 1"))
    return raw


# The ORM pool serves the UI and admin API, not the pipeline: a few warm ones suffice.
_WARM_ENGINE_CONNECTIONS = 4


async def _no_reset(conn: asyncpg.Connection) -> None:
    return None


_ENUM_TYPES = """
SELECT t.oid::regtype::text FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
WHERE t.typtype = 'e' AND n.nspname IN ('public', 'outreach')
"""


async def _prime_type_codecs(conn: asyncpg.Connection) -> None:
    """Have asyncpg introspect every enum type once, when the connection opens.

    Otherwise each connection's first statement touching an enum stops for that
    introspection query, and on a fresh pool they all do it at once.
    """
    names = [row[0] for row in await conn.fetch(_ENUM_TYPES)]
    if names:
        await conn.fetch("SELECT " + ", ".join(f"NULL::{name}" for name in names))


def _prime_engine_connection(dbapi_connection: Any, _record: Any) -> None:
    dbapi_connection.run_async(_prime_type_codecs)


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
