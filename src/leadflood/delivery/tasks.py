"""deliver_lead job: ids in; a delivered or failed delivery is never sent again.

The job is the boundary of an attempt's three steps, each on its own unit of work or none:
claim (one autocommit statement), send (nothing held: a slow or hanging buyer holds no row
lock and no pooled connection), record (one statement, guarded by the claim). The next
attempt's time counts from when the result is recorded (issue 14).
"""

from __future__ import annotations

import uuid

import aiohttp

from leadflood.core.jobs import DELIVER_LEAD, JobContext, job
from leadflood.core.retry import NO_RETRY
from leadflood.core.runtime import Runtime
from leadflood.core.uow import single_statements
from leadflood.delivery import repository as repo
from leadflood.delivery.channels import DeliveryChannel, Outbound
from leadflood.delivery.repository import ClaimedAttempt
from leadflood.delivery.safety import DestinationError, vet
from leadflood.delivery.service import DeliveryOutcome, DeliveryService
from leadflood.routing.service import capacity_may_have_opened


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


PROBE_JOB = "buyers.probe"


@job(PROBE_JOB, retry=NO_RETRY)
async def probe_paused_buyers(ctx: JobContext) -> dict[str, int]:
    """Health probes (every minute): a buyer its failures paused, set to resume itself,
    is resumed when a GET of its health_url answers 2xx. Sent with nothing held."""
    async with ctx.unit_of_work() as tx:
        targets = await repo.buyers_to_probe(tx)
    resumed = 0
    for target in targets:
        if await probe(ctx.runtime, target.health_url):
            async with ctx.unit_of_work() as tx:
                if await repo.resume_buyer(tx, target.buyer_id):
                    resumed += 1
                    await tx.audit(None, "resume", "buyer", target.buyer_id, {"probe": "2xx"})
                    await tx.enqueue(
                        "alerts.send",
                        {"kind": "buyer_resumed", "buyer_id": str(target.buyer_id)},
                    )
                    await capacity_may_have_opened(tx)
    return {"probed": len(targets), "resumed": resumed}


async def probe(runtime: Runtime, url: str) -> bool:
    try:
        target = await vet(url, allow_private=runtime.settings.private_networks_allowed)
        timeout = aiohttp.ClientTimeout(total=5)
        async with runtime.webhook_session().get(
            target.url, timeout=timeout, allow_redirects=False
        ) as response:
            return 200 <= response.status < 300
    except (DestinationError, aiohttp.ClientError, TimeoutError):
        return False
