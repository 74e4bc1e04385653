"""The unit of work: one pooled connection in one transaction, opened by a boundary only.

The boundaries are the request dependency (`TX`, for the API and the pages), the job
runner (`JobContext.unit_of_work`), the CLI and the demo. Services and repositories take
the `Tx` they are given and never open a connection (tests/core/test_boundaries.py holds
them to it). A network call to a partner happens between two units of work — claim and
commit, call, record — never inside one.

`single_statements` is the hot paths' form (decision 0003): no BEGIN/COMMIT round trips,
each statement its own transaction, so a stage's one fused statement (the change and its
next job) is the unit of work.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Any, Literal, Protocol

import asyncpg
import orjson
import structlog

from leadflood.core import queue
from leadflood.core.db import Database
from leadflood.core.principal import Principal

log = structlog.get_logger("leadflood.uow")

Isolation = Literal["read_committed", "repeatable_read", "serializable"]


class Conn(Protocol):
    """What a repository needs: asyncpg's query methods (a `Tx` or a bare connection)."""

    async def fetch(self, query: str, *args: Any, **options: Any) -> list[Any]: ...
    async def fetchrow(self, query: str, *args: Any, **options: Any) -> Any: ...
    async def fetchval(self, query: str, *args: Any, **options: Any) -> Any: ...
    async def execute(self, query: str, *args: Any, **options: Any) -> str: ...


class Tx:
    """A unit of work handed down from the boundary: query, enqueue, audit, after_commit.

    The connection is taken from the pool (and the transaction begun) at the first
    statement, so a boundary may hand a `Tx` to code that first checks a webhook host's
    DNS or renders a form without holding a pooled connection meanwhile.
    """

    __slots__ = (
        "_after_commit",
        "_conn",
        "_db",
        "_enqueued",
        "_isolation",
        "_pool_cm",
        "_transaction",
    )

    def __init__(
        self,
        conn: asyncpg.Connection | None = None,
        *,
        db: Database | None = None,
        isolation: Isolation = "read_committed",
    ) -> None:
        self._conn = conn
        self._db = db
        self._isolation = isolation
        self._pool_cm: Any = None
        self._transaction: Any = None
        self._after_commit: list[Callable[[], Awaitable[None]]] = []
        self._enqueued = False

    async def connection(self) -> asyncpg.Connection:
        """The unit's connection, taken and its transaction begun on first use."""
        if self._conn is None:
            assert self._db is not None
            self._pool_cm = self._db.pool_connection()
            conn = await self._pool_cm.__aenter__()
            try:
                self._transaction = conn.transaction(isolation=self._isolation)
                await self._transaction.start()
            except BaseException:
                await self._pool_cm.__aexit__(None, None, None)
                raise
            self._conn = conn
        return self._conn

    # asyncpg's query methods, keyword arguments (timeout, column, …) passed through.
    async def fetch(self, query: str, *args: Any, **options: Any) -> list[Any]:
        return await (self._conn or await self.connection()).fetch(query, *args, **options)

    async def fetchrow(self, query: str, *args: Any, **options: Any) -> Any:
        return await (self._conn or await self.connection()).fetchrow(query, *args, **options)

    async def fetchval(self, query: str, *args: Any, **options: Any) -> Any:
        return await (self._conn or await self.connection()).fetchval(query, *args, **options)

    async def execute(self, query: str, *args: Any, **options: Any) -> str:
        return await (self._conn or await self.connection()).execute(query, *args, **options)

    async def executemany(self, query: str, args: Any, **options: Any) -> None:
        await (self._conn or await self.connection()).executemany(query, args, **options)

    async def copy_records(self, table: str, records: list[tuple], columns: list[str]) -> None:
        """Binary COPY of many rows (a thousand bids in a few ms, not tens)."""
        conn = self._conn or await self.connection()
        await conn.copy_records_to_table(table, records=records, columns=columns)

    @asynccontextmanager
    async def savepoint(self) -> AsyncIterator[None]:
        """A nested transaction: undo part of the work (a tried insert) and keep the rest."""
        async with (await self.connection()).transaction():
            yield

    async def enqueue(
        self,
        name: str,
        payload: dict[str, Any],
        *,
        delay: timedelta | None = None,
        dedupe_key: str | None = None,
    ) -> int:
        """A job that becomes visible to workers when (and only if) this unit commits."""
        job_id = await queue.enqueue(
            await self.connection(), name, payload, delay=delay, dedupe_key=dedupe_key
        )
        self._enqueued = True
        return job_id

    async def enqueue_once(self, name: str, payload: dict[str, Any]) -> bool:
        queued = await queue.enqueue_once(await self.connection(), name, payload)
        self._enqueued = self._enqueued or queued
        return queued

    def jobs_enqueued(self) -> None:
        """A statement of this unit wrote job rows itself (`queue.fused_enqueue_ctes`):
        the workers are woken once it commits."""
        self._enqueued = True

    async def audit(
        self,
        principal: Principal | None,
        action: str,
        entity_type: str,
        entity_id: uuid.UUID | None,
        changes: dict[str, Any] | None = None,
    ) -> None:
        """One audit row per privileged change, in the change's own transaction."""
        await self.execute(
            _AUDIT,
            principal.user_id if principal else None,
            principal.email if principal else "system",
            action,
            entity_type,
            entity_id,
            orjson.dumps(changes or {}, default=str).decode(),
            principal.ip if principal else None,
            principal.request_id if principal else None,
        )

    def after_commit(self, callback: Callable[[], Awaitable[None]]) -> None:
        """Run `callback` once the unit has committed and its connection is back in the
        pool (a cache refresh, a wake-up); never on rollback."""
        self._after_commit.append(callback)

    async def _finish(self, commit: bool) -> None:
        """End a lazily begun unit: commit or roll back, and give the connection back."""
        if self._pool_cm is None:
            return
        try:
            if commit:
                await self._transaction.commit()
            else:
                await self._transaction.rollback()
        finally:
            pool_cm, self._pool_cm, self._conn = self._pool_cm, None, None
            await pool_cm.__aexit__(None, None, None)

    async def _committed(self) -> None:
        if self._enqueued and self._db is not None:
            self._db.wake_workers()
        for callback in self._after_commit:
            try:
                await callback()
            except Exception:
                log.exception("after_commit_failed")


_AUDIT = """
INSERT INTO audit_log (user_id, actor, action, entity_type, entity_id, changes, ip, request_id)
VALUES ($1, $2, $3, $4, $5, $6::jsonb, $7::inet, $8)
"""


@asynccontextmanager
async def unit_of_work(
    db: Database, *, isolation: Isolation = "read_committed"
) -> AsyncIterator[Tx]:
    """Commit on success, roll back on any exception (and discard the jobs enqueued) —
    except an error that says the work done before it stands (`keeps_work`: a failed
    login is still counted, a reused refresh token still revokes its session)."""
    tx = Tx(db=db, isolation=isolation)
    try:
        yield tx
    except BaseException as exc:
        await tx._finish(commit=bool(getattr(exc, "keeps_work", False)))
        raise
    await tx._finish(commit=True)
    await tx._committed()


@asynccontextmanager
async def single_statements(db: Database) -> AsyncIterator[Tx]:
    """Autocommit: each statement is its own unit of work (the hot paths' fused
    statements, and reads that need no snapshot across statements)."""
    async with db.pool_connection() as conn:
        tx = Tx(conn, db=db)
        yield tx
    await tx._committed()
