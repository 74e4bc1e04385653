"""Routing test helpers."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime

from leadflood.core.uow import Tx, single_statements, unit_of_work
from leadflood.routing.service import RoutingService
from leadflood.routing.tasks import Router
from tests.sql import run

# A Thursday; 2026-01-15 is in winter time everywhere in the US (EST = UTC-5).
WINTER_NOON_UTC = datetime(2026, 1, 15, 19, 0, tzinfo=UTC)


async def route(runtime_or_tx, lead_id: uuid.UUID, at: datetime | None = None):
    """Route on the test's rolled-back unit (`tx`), or as the job does (`runtime`)."""
    if isinstance(runtime_or_tx, Tx):
        return await RoutingService(runtime_or_tx).route(lead_id, now=at or WINTER_NOON_UTC)
    return await Router(runtime_or_tx.db).route(lead_id, now=at or WINTER_NOON_UTC)


def reasons_by_buyer(result) -> dict[str, list[str]]:
    return {c["buyer_id"]: c["reasons"] for c in result.candidates}


async def scalar(runtime_or_tx, sql: str, **params):
    if isinstance(runtime_or_tx, Tx):
        return (await run(runtime_or_tx, sql, params)).scalar()
    async with single_statements(runtime_or_tx.db) as conn:
        return (await run(conn, sql, params)).scalar()


async def execute(runtime_or_tx, sql: str, **params) -> None:
    if isinstance(runtime_or_tx, Tx):
        await run(runtime_or_tx, sql, params)
        return
    async with unit_of_work(runtime_or_tx.db) as conn:
        await run(conn, sql, params)


@asynccontextmanager
async def unit(runtime_or_tx) -> AsyncIterator[Tx]:
    """The test's rolled-back `tx` itself, or a committed unit of the runtime."""
    if isinstance(runtime_or_tx, Tx):
        yield runtime_or_tx
        return
    async with unit_of_work(runtime_or_tx.db) as tx:
        yield tx
