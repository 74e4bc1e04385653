"""The outreach half of the demo: an ICP, a sample search and a few enrichments."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import typer

from leadflood.core.executions import get_execution
from leadflood.core.runtime import Runtime
from leadflood.enrichment.service import start_enrichment
from leadflood.prospecting import service as prospecting
from leadflood.prospecting.schemas import IcpIn, SearchIn

DEMO_ICP = IcpIn(
    name="Revenue leaders at mid-size companies",
    description="Demo ICP: sales and marketing leaders in 51-1000 employee companies.",
    titles=["VP of Sales", "VP Marketing", "Sales Director", "Head of Growth"],
    company_sizes=["51,200", "201,500", "501,1000"],
)


async def _wait(runtime: Runtime, job_ids: list[Any], timeout_s: float = 30) -> list[dict]:
    deadline = time.monotonic() + timeout_s
    while True:
        async with runtime.db.raw() as conn:
            jobs = [await get_execution(conn, job_id) for job_id in job_ids]
        if all(j and j["status"] in ("completed", "failed") for j in jobs) or (
            time.monotonic() > deadline
        ):
            return [j for j in jobs if j]
        await asyncio.sleep(0.2)


async def run_outreach_demo(runtime: Runtime) -> None:
    """Needs a running worker (the demo server's) and the sample providers enabled."""
    icps = await prospecting.list_icps(runtime)
    icp = next((i for i in icps if i["name"] == DEMO_ICP.name), None)
    if icp is None:
        icp = await prospecting.create_icp(runtime, None, DEMO_ICP)
    started = await prospecting.start_search(
        runtime, None, icp["id"], SearchIn(provider="sample", pages=2, per_page=25)
    )
    await _wait(runtime, [started["jobId"]])
    run = await prospecting.get_run(runtime, icp["id"], started["runId"])
    typer.echo(
        f"\noutreach: ICP '{icp['name']}' — sample search {run['status']}: "
        f"{run['results_count']} prospects, {run['leads_created']} new lead(s), "
        f"{run['leads_updated']} updated"
        + (" (today's run already existed)" if started["deduplicated"] else "")
    )
    page = await prospecting.list_leads(
        runtime, filters={"icp_id": icp["id"], "status": "new"}, limit=5
    )
    jobs = [
        (await start_enrichment(runtime, None, lead["id"], provider="sample"))["jobId"]
        for lead in page["items"]
    ]
    done = await _wait(runtime, jobs)
    for job in done:
        lead = await prospecting.lead_detail(runtime, job["lead_id"])
        name = f"{lead['first_name'] or ''} {lead['last_name'] or ''}".strip()
        typer.echo(
            f"  enriched {name:<20} "
            f"{lead['company'] or '':<22} {lead['email'] or '-':<42} {lead['email_status']}"
        )
