"""The outreach half of the demo: an ICP, a sample search and a few enrichments."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import typer

from leadflood.analytics import service as analytics
from leadflood.core.executions import get_execution
from leadflood.core.runtime import Runtime
from leadflood.core.uow import single_statements
from leadflood.enrichment.service import start_enrichment
from leadflood.prospecting import service as prospecting
from leadflood.prospecting.schemas import IcpIn, SearchIn
from leadflood.sequences import service as sequences
from leadflood.sequences.schemas import MailboxIn, SequenceIn, StepIn

DEMO_ICP = IcpIn(
    name="Revenue leaders at mid-size companies",
    description="Demo ICP: sales and marketing leaders in 51-1000 employee companies.",
    titles=["VP of Sales", "VP Marketing", "Sales Director", "Head of Growth"],
    company_sizes=["51,200", "201,500", "501,1000"],
)


async def _wait(runtime: Runtime, job_ids: list[Any], timeout_s: float = 30) -> list[dict]:
    deadline = time.monotonic() + timeout_s
    while True:
        async with single_statements(runtime.db) as conn:
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
    reachable = []
    for job in done:
        lead = await prospecting.lead_detail(runtime, job["lead_id"])
        if lead["email"] and lead["email_status"] in ("valid", "accept_all"):
            reachable.append(lead["id"])
        name = f"{lead['first_name'] or ''} {lead['last_name'] or ''}".strip()
        typer.echo(
            f"  enriched {name:<20} "
            f"{lead['company'] or '':<22} {lead['email'] or '-':<42} {lead['email_status']}"
        )
    if reachable:
        await run_sequence_demo(runtime, reachable)


DEMO_MAILBOX = MailboxIn(
    name="Demo sales",
    from_email="sales@leadflood-demo.example",
    from_name="Sam from Lead Flood",
    window_start="00:00",
    window_end="23:59",
)
DEMO_SEQUENCE = SequenceIn(
    name="Demo intro",
    steps=[
        StepIn(
            subject_template="A quick idea for {{ company }}",
            body_template="Hi {{ first_name }},\n\nwe help teams like {{ company }} reach "
            "more buyers. Worth a chat?\n\n{{ sender_name }}",
        ),
        StepIn(
            delay_minutes=2 * 24 * 60,
            subject_template="Following up",
            body_template="Hi {{ first_name }}, any thoughts on my last note?\n{{ sender_name }}",
        ),
    ],
)


async def run_sequence_demo(runtime: Runtime, lead_ids: list[Any]) -> None:
    """A mailbox and a two-step sequence; enrolled leads get step 1 in the SMTP sink."""
    mailboxes = await sequences.list_mailboxes(runtime)
    mailbox = next((m for m in mailboxes if m["from_email"] == DEMO_MAILBOX.from_email), None)
    if mailbox is None:
        mailbox = await sequences.create_mailbox(runtime, None, DEMO_MAILBOX)
    existing = [
        s for s in await sequences.list_sequences(runtime) if s["name"] == DEMO_SEQUENCE.name
    ]
    if existing:
        sequence = existing[0]
    else:
        body = DEMO_SEQUENCE.model_copy(update={"mailbox_id": mailbox["id"]})
        sequence = await sequences.create_sequence(runtime, None, body)
        await sequences.set_status(runtime, None, sequence["id"], "active")
    result = await sequences.enroll(runtime, None, sequence["id"], lead_ids)
    await sequences.tick(runtime)
    sent = await _wait_sent(runtime, sequence["id"])
    typer.echo(
        f"  sequence '{DEMO_SEQUENCE.name}': {len(result['enrolled'])} lead(s) enrolled, "
        f"{len(result['refused'])} refused; {sent} email(s) sent (see /outreach/sink)"
    )


async def _wait_sent(runtime: Runtime, sequence_id: Any, timeout_s: float = 30) -> int:
    deadline = time.monotonic() + timeout_s
    while True:
        summary = await analytics.summary(runtime)
        current = await sequences.get_sequence(runtime, sequence_id)
        expected = len(current["enrollments"])
        if summary["messages"]["sent"] >= expected or time.monotonic() > deadline:
            return summary["messages"]["sent"]
        await asyncio.sleep(0.2)
