"""Issue 14: CR/LF never reaches an SMTP header: refused at input, and a send whose
rendered header would carry one is recorded as failed, never left queued."""

from __future__ import annotations

import pytest

from leadflood.core.uow import unit_of_work
from leadflood.sequences.tasks import tick
from tests.conftest import drain_jobs
from tests.outreach.helpers import scalar
from tests.outreach.test_sequences import lead, mailbox, sent_mail, sequence
from tests.sql import run

INJECTED = "Hello\r\nBcc: victim@example.com"


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/v1/mailboxes", {"name": "S", "from_email": "a@b.example\r\nBcc: x@y.example"}),
        ("/v1/mailboxes", {"name": "S", "from_email": "a@b.example", "from_name": INJECTED}),
        ("/v1/mailboxes", {"name": INJECTED, "from_email": "a@b.example"}),
        (
            "/v1/sequences",
            {
                "name": "Intro",
                "steps": [{"subject_template": INJECTED, "body_template": "Hi"}],
            },
        ),
        ("/v1/admin/markets", {"slug": "m", "name": INJECTED, "country": "US", "timezone": "UTC"}),
        ("/v1/admin/verticals", {"slug": "v", "name": "Solar\nBcc: x@y.example"}),
    ],
)
async def test_line_breaks_in_header_fields_are_refused_at_input(client, admin, path, body) -> None:
    response = await client.post(path, json=body, headers=admin)
    assert response.status_code == 400, response.text


async def test_a_rendered_subject_with_a_line_break_fails_the_send(
    client,
    runtime,
    manager,
    smtp,
) -> None:
    box = await mailbox(client, manager)
    seq = await sequence(client, manager, box)
    ana = await lead(client, manager, "ana@lead.example")
    await client.post(f"/v1/sequences/{seq}/enrollments", json={"lead_ids": [ana]}, headers=manager)
    # Lead data arrives from providers and imports too: the subject renders {{ company }}.
    async with unit_of_work(runtime.db) as conn:
        await run(conn, "UPDATE outreach.leads SET company = :c", {"c": INJECTED})
    await tick(runtime)
    await drain_jobs(runtime)
    assert await sent_mail(runtime) == []
    status = await scalar(runtime, "SELECT status FROM outreach.messages")
    assert status == "failed"
    assert "invalid_header" in await scalar(runtime, "SELECT error FROM outreach.messages")
    assert (
        await scalar(
            runtime, "SELECT status FROM outreach.job_executions WHERE type = 'message.send'"
        )
        == "failed"
    )
