"""system.reconcile: a periodic job (every minute by default) on every worker."""

from __future__ import annotations

from leadflood.core.jobs import RECONCILE, JobContext, job
from leadflood.core.retry import NO_RETRY
from leadflood.reconcile.service import reconcile


@job(RECONCILE, retry=NO_RETRY)
async def reconcile_job(ctx: JobContext) -> dict[str, int]:
    async with ctx.unit_of_work() as tx:
        return await reconcile(tx)
