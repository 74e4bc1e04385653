"""message.send (tracked, with retries) and sequence.tick (periodic).

message.send is the boundary of one attempt: prepare in one unit of work (which takes the
mailbox's daily send unit), send on the message's channel with nothing held, record the
result in another unit. It sends sequence steps and manual replies alike.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from leadflood.core.executions import Deferred, Execution
from leadflood.core.jobs import JobContext, job
from leadflood.core.retry import NO_RETRY
from leadflood.core.runtime import Runtime
from leadflood.core.uow import unit_of_work
from leadflood.messaging import service as messaging
from leadflood.messaging.channels import Outgoing, channel_for
from leadflood.messaging.service import SEND_JOB, SEND_RETRY
from leadflood.sequences import service

TICK_JOB = "sequence.tick"


@job(SEND_JOB, retry=SEND_RETRY, tracked=True, on_failure=messaging.send_failed)
async def send_message(ctx: JobContext, execution: Execution) -> dict[str, Any]:
    message_id = uuid.UUID(execution.payload["message_id"])
    settings = ctx.runtime.settings
    async with ctx.unit_of_work() as tx:
        prepared = await service.prepare_send(tx, settings, message_id, datetime.now(UTC))
    if isinstance(prepared, service.Later):
        raise Deferred(prepared.delay, prepared.reason)  # after its slot decision committed
    if not isinstance(prepared, Outgoing):
        return prepared
    try:
        sent = await channel_for(prepared.message.channel, settings).send(prepared)
    except Exception as exc:
        async with ctx.unit_of_work() as tx:
            await service.record_failure(tx, prepared, exc)
        raise
    async with ctx.unit_of_work() as tx:
        await service.record_sent(tx, prepared, sent)
    return {"message_id": str(message_id), "outcome": "sent"}


async def tick(runtime: Runtime, *, now: datetime | None = None) -> dict[str, int]:
    """Schedule every due step, one committed batch at a time."""
    at = now or datetime.now(UTC)
    scheduled = skipped = 0
    more = True
    while more:
        async with unit_of_work(runtime.db) as tx:
            done, passed, more = await service.tick_batch(tx, at)
        scheduled, skipped = scheduled + done, skipped + passed
    return {"scheduled": scheduled, "skipped": skipped}


@job(TICK_JOB, retry=NO_RETRY)
async def sequence_tick(ctx: JobContext) -> None:
    await tick(ctx.runtime)
