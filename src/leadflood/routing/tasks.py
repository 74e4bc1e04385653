"""route_lead job: ids in, no-op when the lead is past the stage."""

from __future__ import annotations

import uuid

import structlog

from leadflood.core.jobs import RETRY_UNROUTED, ROUTE_LEAD, JobContext, job
from leadflood.routing.service import RoutingService

log = structlog.get_logger("leadflood.routing")


@job(ROUTE_LEAD)
async def route_lead_job(ctx: JobContext) -> None:
    lead_id = uuid.UUID(ctx.payload["lead_id"])
    result = await RoutingService(ctx.runtime.db).route(lead_id)
    log.info(
        "lead_routed",
        lead_id=str(lead_id),
        outcome=result.outcome,
        buyer_id=str(result.buyer_id) if result.buyer_id else None,
    )


@job(RETRY_UNROUTED, max_attempts=1)
async def retry_unrouted_job(ctx: JobContext) -> None:
    """Periodic, and enqueued when capacity opens (a buyer resumed, funds topped up)."""
    outcomes = await RoutingService(ctx.runtime.db).retry_unrouted(tried_only=True)
    if outcomes:
        log.info("unrouted_retried", **outcomes)
