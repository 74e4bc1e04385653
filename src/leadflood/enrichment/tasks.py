"""lead.enrich: a tracked job with the enrichment retry policy.

The job is the boundary of one attempt: begin (one unit), ask the provider with nothing
held, then apply what it found in another unit.
"""

from __future__ import annotations

import uuid
from typing import Any

from leadflood.core.executions import Execution
from leadflood.core.jobs import JobContext, job
from leadflood.core.providers import PermanentProviderError
from leadflood.enrichment import service
from leadflood.enrichment.service import ENRICH_JOB, ENRICH_RETRY

FAILED, REPLAYED = service.enrichment_failed, service.reopen_enrichment


@job(ENRICH_JOB, retry=ENRICH_RETRY, tracked=True, on_failure=FAILED, on_replay=REPLAYED)
async def run_enrichment(ctx: JobContext, execution: Execution) -> dict[str, Any]:
    run_id = uuid.UUID(execution.payload["enrichment_run_id"])
    lead_id = execution.subject("lead_id")
    async with ctx.statements() as tx:
        run, lead = await service.begin_run(tx, run_id, lead_id)
    try:
        result = await service.fetch(run, lead, ctx.runtime.settings)
    except PermanentProviderError as exc:
        if exc.code == "credits_exhausted":
            # The account's quota, not this lead: every worker stops calling (one message).
            async with ctx.unit_of_work() as tx:
                await service.record_quota_exhausted(tx, run.provider, exc.message)
        raise
    async with ctx.unit_of_work() as tx:
        if result is None:
            return await service.record_opt_out(tx, run_id, lead_id)
        return await service.apply_result(tx, run, lead_id, result)


@job(
    service.BULK_JOB,
    retry=ENRICH_RETRY,
    tracked=True,
    on_failure=service.bulk_failed,
    on_replay=service.reopen_bulk,
)
async def run_bulk_enrichment(ctx: JobContext, execution: Execution) -> dict[str, Any]:
    """Up to ten leads in one provider call (Apollo's bulk_match), applied in one unit."""
    async with ctx.statements() as tx:
        begun = await service.begin_runs(tx, service.bulk_runs(execution))
    try:
        results = await service.fetch_many(begun, ctx.runtime.settings)
    except PermanentProviderError as exc:
        if exc.code == "credits_exhausted" and begun:
            async with ctx.unit_of_work() as tx:
                await service.record_quota_exhausted(tx, begun[0][0].provider, exc.message)
        raise
    async with ctx.unit_of_work() as tx:
        outcomes = [
            await service.apply_result(tx, run, lead.id, result)
            for (run, lead), result in zip(begun, results, strict=True)
        ]
    return {
        "leads": len(begun),
        "found": sum(1 for o in outcomes if o.get("outcome") == "found"),
        "outcomes": [{"lead_id": o.get("lead_id"), "outcome": o.get("outcome")} for o in outcomes],
    }
