"""icp.search.run: a tracked job with the search retry policy.

The job is the boundary of one attempt: begin the run (one unit), then per page fetch
from the provider with nothing held and store the page in its own unit, then finish.
"""

from __future__ import annotations

from typing import Any

from leadflood.core.executions import Execution
from leadflood.core.jobs import JobContext, job
from leadflood.prospecting import service
from leadflood.prospecting.service import SEARCH_JOB, SEARCH_RETRY

FAILED, REPLAYED = service.search_failed, service.reopen_search


@job(SEARCH_JOB, retry=SEARCH_RETRY, tracked=True, on_failure=FAILED, on_replay=REPLAYED)
async def run_search(ctx: JobContext, execution: Execution) -> dict[str, Any]:
    run_id = execution.subject("search_run_id")
    async with ctx.statements() as tx:
        run = await service.begin_run(tx, run_id)
    params, filters = run.params, service.run_filters(run)
    source = service.open_source(run.provider, ctx.runtime.settings)
    page, total, fetched = 1, None, 0
    try:
        while page <= params["pages"]:
            result = await service.fetch_page(
                source, run.provider, filters, page, params["per_page"]
            )
            fetched, total = page, result.total
            async with ctx.unit_of_work() as tx:
                await service.store_page(tx, run, result.prospects)
            if not result.has_more:
                break
            page += 1
    finally:
        await source.close()
    async with ctx.unit_of_work() as tx:
        return await service.finish_run(tx, ctx.runtime.settings, run, pages=fetched, total=total)
