"""Async engine and the transaction boundary used by requests and jobs."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import asyncpg
from sqlalchemy import text
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
            connect_args={"server_settings": {"application_name": "leadflood"}},
        )

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
                )
        return self._raw_pool

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


async def _no_reset(conn: asyncpg.Connection) -> None:
    return None


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
