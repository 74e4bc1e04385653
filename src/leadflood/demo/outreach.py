"""The outreach half of the demo: an ICP, a sample search and a few enrichments."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import typer

from leadflood.analytics import service as analytics
from leadflood.core.executions import Execution, get_execution
from leadflood.core.runtime import Runtime
from leadflood.core.uow import Tx, unit_of_work
from leadflood.enrichment.service import start_enrichment
from leadflood.messaging import service as messaging
from leadflood.messaging.schemas import MailboxIn
from leadflood.prospecting import service as prospecting
from leadflood.prospecting.schemas import IcpIn, SearchIn
from leadflood.sequences import service as sequences
from leadflood.sequences import tasks as sequence_tasks
from leadflood.sequences.schemas import SequenceIn, StepIn

T = TypeVar("T")


async def _do(runtime: Runtime, work: Callable[[Tx], Awaitable[T]]) -> T:
    """One demo step on its own unit of work (the demo is a boundary, like the CLI)."""
    async with unit_of_work(runtime.db) as tx:
        return await work(tx)


DEMO_ICP = IcpIn(
    name="Revenue leaders at mid-size companies",
    description="Demo ICP: sales and marketing leaders in 51-1000 employee companies.",
    titles=["VP of Sales", "VP Marketing", "Sales Director", "Head of Growth"],
    company_sizes=["51,200", "201,500", "501,1000"],
)


async def _wait(runtime: Runtime, job_ids: list[Any], timeout_s: float = 30) -> list[Execution]:
    deadline = time.monotonic() + timeout_s
    while True:
        async with unit_of_work(runtime.db) as tx:
            jobs = [await get_execution(tx, job_id) for job_id in job_ids]
        if all(j and j.status in ("completed", "failed") for j in jobs) or (
            time.monotonic() > deadline
        ):
            return [j for j in jobs if j]
        await asyncio.sleep(0.2)


async def run_outreach_demo(runtime: Runtime) -> None:
    """Needs a running worker (the demo server's) and the sample providers enabled."""
    icps = await _do(runtime, lambda tx: prospecting.list_icps(tx))
    found = next((i for i in icps if i.name == DEMO_ICP.name), None)
    if found is not None:
        icp_id = found.id
    else:
        icp_id = (await _do(runtime, lambda tx: prospecting.create_icp(tx, None, DEMO_ICP))).id
    search = SearchIn(provider="sample", pages=2, per_page=25)
    started = await _do(
        runtime,
        lambda tx: prospecting.start_search(tx, runtime.settings, None, icp_id, search),
    )
    await _wait(runtime, [started["job_id"]])
    run = await _do(runtime, lambda tx: prospecting.get_run(tx, icp_id, started["run_id"]))
    typer.echo(
        f"\noutreach: ICP '{DEMO_ICP.name}' — sample search {run.status}: "
        f"{run.results_count} prospects, {run.leads_created} new lead(s), "
        f"{run.leads_updated} updated"
        + (" (today's run already existed)" if started["deduplicated"] else "")
    )
    page = await _do(
        runtime,
        lambda tx: prospecting.list_leads(tx, filters={"icp_id": icp_id, "status": "new"}, limit=5),
    )

    # Each step bound to its own lead (a lambda in a loop would see the last one).
    def enrich(lead_id: uuid.UUID) -> Callable[[Tx], Awaitable[dict[str, Any]]]:
        return lambda tx: start_enrichment(tx, runtime.settings, None, lead_id, provider="sample")

    def detail(lead_id: uuid.UUID) -> Callable[[Tx], Awaitable[Any]]:
        return lambda tx: prospecting.lead_detail(tx, lead_id)

    jobs = [(await _do(runtime, enrich(lead.id)))["job_id"] for lead in page["items"]]
    done = await _wait(runtime, jobs)
    reachable = []
    for job in done:
        lead = await _do(runtime, detail(job.subject("lead_id")))
        if lead.email and lead.email_status in ("valid", "accept_all"):
            reachable.append(lead.id)
        name = f"{lead.first_name or ''} {lead.last_name or ''}".strip()
        typer.echo(
            f"  enriched {name:<20} "
            f"{lead.company or '':<22} {lead.email or '-':<42} {lead.email_status}"
        )
    if reachable:
        await run_sequence_demo(runtime, reachable)


DEMO_MAILBOX = MailboxIn(
    name="Demo sales",
    from_email="sales@leadflood-demo.example",
    from_name="Sam from Lead Flood",
    window_start="00:00",
    window_end="23:59",
    # The demo sends into the local sink: no spacing, so its emails show at once.
    min_spacing_s=0,
    jitter_s=0,
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
    mailboxes = await _do(runtime, lambda tx: messaging.list_mailboxes(tx))
    mailbox = next((m for m in mailboxes if m.from_email == DEMO_MAILBOX.from_email), None)
    if mailbox is None:
        mailbox = await _do(
            runtime,
            lambda tx: messaging.create_mailbox(
                tx, None, DEMO_MAILBOX, runtime.settings.secret_key.get_secret_value()
            ),
        )
    existing = [
        s
        for s in await _do(runtime, lambda tx: sequences.list_sequences(tx))
        if s.name == DEMO_SEQUENCE.name
    ]
    if existing:
        sequence_id = existing[0].id
    else:
        body = DEMO_SEQUENCE.model_copy(update={"mailbox_id": mailbox.id})
        created = await _do(runtime, lambda tx: sequences.create_sequence(tx, None, body))
        sequence_id = created.id
        await _do(runtime, lambda tx: sequences.set_status(tx, None, sequence_id, "active"))
    result = await _do(runtime, lambda tx: sequences.enroll(tx, None, sequence_id, lead_ids))
    await sequence_tasks.tick(runtime)
    sent = await _wait_sent(runtime, sequence_id)
    typer.echo(
        f"  sequence '{DEMO_SEQUENCE.name}': {len(result['enrolled'])} lead(s) enrolled, "
        f"{len(result['refused'])} refused; {sent} email(s) sent (see /outreach/sink)"
    )


async def _wait_sent(runtime: Runtime, sequence_id: Any, timeout_s: float = 30) -> int:
    deadline = time.monotonic() + timeout_s
    while True:
        summary = await _do(runtime, lambda tx: analytics.summary(tx))
        current = await _do(runtime, lambda tx: sequences.get_sequence(tx, sequence_id))
        expected = len(current.enrollments)
        if summary["messages"]["sent"] >= expected or time.monotonic() > deadline:
            return summary["messages"]["sent"]
        await asyncio.sleep(0.2)
