"""deliver_lead job: ids in; a delivered or failed delivery is never sent again."""

from __future__ import annotations

import uuid

from leadflood.core.jobs import DELIVER_LEAD, JobContext, job
from leadflood.delivery.service import DeliveryService


@job(DELIVER_LEAD)
async def deliver_lead_job(ctx: JobContext) -> None:
    await DeliveryService(ctx.runtime).deliver(uuid.UUID(ctx.payload["lead_id"]))
