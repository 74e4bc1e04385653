"""The request boundary: one unit of work per API call or page, committed before the
response is sent (so a failed commit is the client's error, never a lost write)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Coroutine
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, Request
from starlette.responses import JSONResponse

from leadflood.core.idempotency import idempotent
from leadflood.core.principal import Principal
from leadflood.core.runtime import runtime_of
from leadflood.core.settings import Settings
from leadflood.core.uow import Isolation, Tx, single_statements, unit_of_work

_READS = frozenset({"GET", "HEAD"})


async def request_tx(request: Request) -> AsyncIterator[Tx]:
    """Reads see one snapshot across all their statements (a lead's page is consistent);
    writes run at read committed, where row locks and constraints do the guarding."""
    isolation: Isolation = "repeatable_read" if request.method in _READS else "read_committed"
    async with unit_of_work(runtime_of(request).db, isolation=isolation) as tx:
        yield tx


async def request_statements(request: Request) -> AsyncIterator[Tx]:
    """The ingestion fast path's boundary: its one fused statement is the unit of work."""
    async with single_statements(runtime_of(request).db) as tx:
        yield tx


# scope="function": the commit runs when the endpoint returns, before the response goes out.
TX = Depends(request_tx, scope="function")
STATEMENTS = Depends(request_statements, scope="function")
TxDep = Annotated[Tx, TX]


@dataclass(slots=True)
class Call:
    """One authenticated API call at its boundary: the request, who makes it (already
    checked against the route's permission) and the call's unit of work."""

    request: Request
    principal: Principal
    tx: Tx

    @property
    def settings(self) -> Settings:
        return runtime_of(self.request).settings

    async def idempotent(self, work: Coroutine[Any, Any, Any]) -> JSONResponse:
        """`work` under the caller's Idempotency-Key (core/idempotency.py)."""
        return await idempotent(self.request, self.tx, self.principal, work)
