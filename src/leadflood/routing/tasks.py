"""route_lead job: ids in, no-op when the lead is past the stage."""

from __future__ import annotations

import uuid
from datetime import datetime

import structlog

from leadflood.core.db import Database
from leadflood.core.jobs import RETRY_UNROUTED, ROUTE_LEAD, JobContext, job
from leadflood.core.retry import NO_RETRY
from leadflood.core.uow import single_statements
from leadflood.routing.service import RouteResult, RoutingService

log = structlog.get_logger("leadflood.routing")


class Router:
    """The routing boundary outside a job (CLI, admin commands, benches, tests): each
    call runs on its own autocommit unit, as the job does."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def route(self, lead_id: uuid.UUID, *, now: datetime | None = None) -> RouteResult:
        async with single_statements(self.db) as tx:
            return await RoutingService(tx).route(lead_id, now=now)

    async def retry_unrouted(self, limit: int = 1000, *, tried_only: bool = False) -> dict:
        async with single_statements(self.db) as tx:
            return await RoutingService(tx).retry_unrouted(limit, tried_only=tried_only)


@job(ROUTE_LEAD)
async def route_lead_job(ctx: JobContext) -> None:
    lead_id = uuid.UUID(ctx.payload["lead_id"])
    async with ctx.statements() as tx:
        result = await RoutingService(tx).route(lead_id)
    log.info(
        "lead_routed",
        lead_id=str(lead_id),
        outcome=result.outcome,
        buyer_id=str(result.buyer_id) if result.buyer_id else None,
    )


@job(RETRY_UNROUTED, retry=NO_RETRY)
async def retry_unrouted_job(ctx: JobContext) -> None:
    """Periodic, and enqueued when capacity opens (a buyer resumed, funds topped up)."""
    async with ctx.statements() as tx:
        outcomes = await RoutingService(tx).retry_unrouted(tried_only=True)
    if outcomes:
        log.info("unrouted_retried", **outcomes)
