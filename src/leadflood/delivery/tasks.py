"""deliver_lead job: ids in; a delivered or failed delivery is never sent again.

The job is the boundary of an attempt's three steps, each on its own unit of work or none:
claim (one autocommit statement), send (nothing held: a slow or hanging buyer holds no row
lock and no pooled connection), record (one statement, guarded by the claim). The next
attempt's time counts from when the result is recorded (issue 14).
"""

from __future__ import annotations

import uuid

from leadflood.core.jobs import DELIVER_LEAD, JobContext, job
from leadflood.core.runtime import Runtime
from leadflood.core.uow import single_statements
from leadflood.delivery.channels import DeliveryChannel, Outbound
from leadflood.delivery.repository import ClaimedAttempt
from leadflood.delivery.service import DeliveryOutcome, DeliveryService


class DeliveryRun:
    """Runs attempts for the job (and for the CLI, benches and tests)."""

    def __init__(
        self, runtime: Runtime, channels: dict[str, DeliveryChannel] | None = None
    ) -> None:
        self.runtime = runtime
        self.service = DeliveryService(runtime, channels)

    async def deliver(self, lead_id: uuid.UUID) -> DeliveryOutcome:
        claimed = await self._claim(lead_id)
        if isinstance(claimed, DeliveryOutcome):
            return claimed
        row, message = claimed
        attempt, result = await self.service.send(row, message)
        async with single_statements(self.runtime.db) as tx:
            return await self.service.record(tx, row, attempt, result)

    async def _claim(self, lead_id: uuid.UUID) -> DeliveryOutcome | tuple[ClaimedAttempt, Outbound]:
        async with single_statements(self.runtime.db) as tx:
            return await self.service.claim(tx, lead_id)


@job(DELIVER_LEAD)
async def deliver_lead_job(ctx: JobContext) -> None:
    await DeliveryRun(ctx.runtime).deliver(uuid.UUID(ctx.payload["lead_id"]))
