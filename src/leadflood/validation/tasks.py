"""validate_lead job: ids in, no-op when the lead is past the stage."""

from __future__ import annotations

import uuid

import structlog

from leadflood.core.jobs import VALIDATE_LEAD, JobContext, job
from leadflood.health.metrics import STAGE_TRANSITIONS
from leadflood.validation.service import validate_lead

log = structlog.get_logger("leadflood.validation")


@job(VALIDATE_LEAD)
async def validate_lead_job(ctx: JobContext) -> None:
    lead_id = uuid.UUID(ctx.payload["lead_id"])
    async with ctx.statements() as tx:
        result = await validate_lead(tx, lead_id)
    if result.changed:
        STAGE_TRANSITIONS.labels(result.status or "unknown").inc()
    log.info(
        "lead_validated",
        lead_id=str(lead_id),
        status=result.status,
        reasons=list(result.reasons),
        changed=result.changed,
    )
