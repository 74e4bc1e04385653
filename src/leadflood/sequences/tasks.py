"""message.send (tracked, with retries) and sequence.tick (periodic)."""

from __future__ import annotations

from leadflood.core.executions import tracked_job
from leadflood.core.jobs import JobContext, job
from leadflood.sequences.service import SEND_JOB, SEND_RETRY, send_failed, send_message, tick

TICK_JOB = "sequence.tick"

tracked_job(SEND_JOB, SEND_RETRY, on_failure=send_failed)(send_message)


@job(TICK_JOB, max_attempts=1)
async def sequence_tick(ctx: JobContext) -> None:
    await tick(ctx.runtime)
