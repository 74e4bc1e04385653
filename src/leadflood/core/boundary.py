"""The request boundary: one unit of work per API call or page, committed before the
response is sent (so a failed commit is the client's error, never a lost write)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Request

from leadflood.core.runtime import runtime_of
from leadflood.core.uow import Tx, single_statements, unit_of_work

_READS = frozenset({"GET", "HEAD"})


async def request_tx(request: Request) -> AsyncIterator[Tx]:
    """Reads see one snapshot across all their statements (a lead's page is consistent);
    writes run at read committed, where row locks and constraints do the guarding."""
    isolation = "repeatable_read" if request.method in _READS else "read_committed"
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
