"""route_lead job: ids in, no-op when the lead is past the stage."""

from __future__ import annotations

import uuid

import structlog

from leadflood.core.jobs import ROUTE_LEAD, JobContext, job
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
