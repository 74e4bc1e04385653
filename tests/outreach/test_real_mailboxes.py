"""Real mailboxes: replies and bounces read from a real IMAP server (dovecot), sending
through the mailbox's own authenticated SMTP server, refusals at send time, spacing,
rotation, warm-up, the bounce-rate pause, soft bounces, opt-outs, delivery reports,
unmatched mail, and editing and deleting mailboxes."""

from __future__ import annotations

import itertools
from datetime import date, timedelta
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from leadflood.inbox.tasks import poll_mailbox
from leadflood.messaging.repository import Mailbox
from leadflood.sequences.sending import daily_limit_on
from leadflood.sequences.tasks import tick
from tests.conftest import drain_jobs
from tests.imap_server import USERS
from tests.live import free_port
from tests.outreach.helpers import scalar
from tests.outreach.test_sequences import (
    enrollment,
    inbound,
    lead,
    mailbox,
    sent_mail,
    sequence,
)

CORPUS = Path(__file__).parents[1] / "fixtures" / "inbound"
# A first email, and a follow-up days later: enrollments stay active after the first send.
TWO_STEPS = [
    {"channel": "email", "subject_template": "Idea for {{ company }}", "body_template": "Hi"},
    {"channel": "email", "delay_minutes": 60 * 24 * 3, "body_template": "Following up"},
]
ONE_STEP = [
    {"channel": "email", "subject_template": "Idea for {{ company }}", "body_template": "Hi"}
]


def corpus(name: str, original_id: str, address: str) -> bytes:
    """A corpus message made to answer our real message to `address`."""
    raw = (CORPUS / name).read_bytes()
    return raw.replace(b"<orig-1@sales.example>", original_id.encode()).replace(
        b"bob@lead.example", address.encode()
    )


async def send_to(client, runtime, manager, box: str, *addresses: str) -> dict[str, str]:
    """Enroll one lead per address in a one-step sequence and send: address -> lead id."""
    seq = await sequence(client, manager, box, steps=TWO_STEPS)
    leads = {a: await lead(client, manager, a) for a in addresses}
    enrolled = await client.post(
        f"/v1/sequences/{seq}/enrollments", json={"lead_ids": list(leads.values())}, headers=manager
    )
    assert len(enrolled.json()["enrolled"]) == len(addresses)
    await tick(runtime)
    await drain_jobs(runtime)
    return leads


async def message_id_to(runtime, address: str) -> str:
    return await scalar(
        runtime,
        f"SELECT message_id_header FROM outreach.messages WHERE to_address = '{address}' "
        "AND direction = 'outbound'",
    )


# ---- IMAP ---------------------------------------------------------------------------------


async def test_replies_and_bounces_arrive_by_imap(client, runtime, manager, smtp, dovecot):
    box = await mailbox(
        client,
        manager,
        imap={
            "host": dovecot.host,
            "port": dovecot.port,
            "security": "none",
            "username": "ann@sales.example",
            "password": USERS["ann@sales.example"],
        },
    )
    shown = (await client.get(f"/v1/mailboxes/{box}", headers=manager)).json()
    assert shown["imap_password_set"] is True and "password" not in str(shown).replace(
        "password_set", ""
    )
    stored = await scalar(
        runtime, f"SELECT imap_password_enc FROM outreach.mailboxes WHERE id = '{box}'"
    )
    assert stored.startswith("v1:") and USERS["ann@sales.example"] not in stored

    leads = await send_to(
        client, runtime, manager, box, "ana@lead.example", "bob@lead.example", "cy@lead.example"
    )
    ana_id = await message_id_to(runtime, "ana@lead.example")
    bob_id = await message_id_to(runtime, "bob@lead.example")
    cy_id = await message_id_to(runtime, "cy@lead.example")
    dovecot.append("ann@sales.example", corpus("reply_gmail_en.eml", ana_id, "ana@lead.example"))
    dovecot.append(
        "ann@sales.example",
        corpus("bounce_postfix_dsn_user_unknown.eml", bob_id, "bob@lead.example"),
    )
    dovecot.append("ann@sales.example", corpus("auto_exchange_oof.eml", cy_id, "cy@lead.example"))
    stranger = (
        (CORPUS / "reply_de.eml")
        .read_bytes()
        .replace(b"bob@lead.example", b"colleague@lead.example")
        .replace(b"<orig-1@sales.example>", b"<unknown@elsewhere.example>")
    )
    dovecot.append("ann@sales.example", stranger)

    first = await poll_mailbox(runtime, box)
    assert first["read"] == 4, first
    assert (await enrollment(runtime, leads["ana@lead.example"]))["stop_reason"] == "replied"
    assert (await enrollment(runtime, leads["bob@lead.example"]))["stop_reason"] == "bounced"
    assert (await enrollment(runtime, leads["cy@lead.example"]))["status"] != "stopped"
    assert (
        await scalar(
            runtime, "SELECT reason FROM outreach.suppressions WHERE address = 'bob@lead.example'"
        )
        == "bounced"
    )
    # The reply is stored as the person's words, the quoted history beside it.
    body, full = await scalar(
        runtime,
        "SELECT array[body, full_body] FROM outreach.messages WHERE kind = 'reply' "
        "AND from_address = 'ana@lead.example'",
    )
    assert "Thursday afternoon" in body and "Would Acme" not in body and "Would Acme" in full
    unmatched = (await client.get("/v1/inbox/unmatched", headers=manager)).json()["items"]
    assert [u["from_address"] for u in unmatched] == ["colleague@lead.example"]

    # The second poll reads nothing again; a new message is read alone.
    assert (await poll_mailbox(runtime, box))["read"] == 0
    dovecot.append(
        "ann@sales.example",
        (CORPUS / "reply_fr.eml")
        .read_bytes()
        .replace(b"bob@lead.example", b"cy@lead.example")
        .replace(b"<orig-1@sales.example>", cy_id.encode()),
    )
    assert (await poll_mailbox(runtime, box))["read"] == 1
    assert (await enrollment(runtime, leads["cy@lead.example"]))["stop_reason"] == "replied"
    assert (
        await scalar(runtime, f"SELECT imap_last_uid FROM outreach.mailboxes WHERE id = '{box}'")
        == 5
    )

    # A forgotten position (a restored backup, say) re-reads the inbox: nothing twice.
    await scalar(
        runtime, f"UPDATE outreach.mailboxes SET imap_last_uid = 0 WHERE id = '{box}' RETURNING 1"
    )
    again = await poll_mailbox(runtime, box)
    assert again["read"] == 5 and set(again["outcomes"]) == {
        "duplicate:reply",
        "duplicate:bounce",
        "duplicate:auto_reply",
    }
    assert await scalar(runtime, "SELECT count(*) FROM outreach.unmatched_inbound") == 1


async def test_an_unreachable_or_refusing_inbox_is_shown_on_the_mailbox(
    client, runtime, manager, dovecot
):
    box = await mailbox(
        client,
        manager,
        imap={
            "host": dovecot.host,
            "port": dovecot.port,
            "security": "none",
            "username": "bo@sales.example",
            "password": "wrong",
        },
    )
    result = await poll_mailbox(runtime, box)
    assert "login_failed" in result["error"]
    shown = (await client.get(f"/v1/mailboxes/{box}", headers=manager)).json()
    assert "login_failed" in shown["imap_error"] and "wrong" not in shown["imap_error"]
    # Fixing the password (an update) clears the error on the next read.
    body = {
        **{k: shown[k] for k in ("name", "from_email", "from_name", "timezone")},
        "window_start": "00:00",
        "window_end": "23:59",
        "min_spacing_s": 0,
        "jitter_s": 0,
        "imap": {
            "host": dovecot.host,
            "port": dovecot.port,
            "security": "none",
            "username": "bo@sales.example",
            "password": USERS["bo@sales.example"],
        },
    }
    assert (await client.put(f"/v1/mailboxes/{box}", json=body, headers=manager)).status_code == 200
    assert (await poll_mailbox(runtime, box))["read"] == 0
    assert (await client.get(f"/v1/mailboxes/{box}", headers=manager)).json()["imap_error"] is None
    # The on-demand check is a job; a mailbox without IMAP says so.
    assert (await client.post(f"/v1/mailboxes/{box}/check", headers=manager)).status_code == 202
    plain = await mailbox(client, manager, from_email="plain@seller.example")
    refused = await client.post(f"/v1/mailboxes/{plain}/check", headers=manager)
    assert refused.status_code == 400 and refused.json()["error"]["code"] == "no_imap"


# ---- the mailbox's own SMTP server ----------------------------------------------------------


class _Recorder:
    def __init__(self, refuse: str | None = None) -> None:
        self.refuse = refuse
        self.received: list[tuple[str, list[str], bytes]] = []

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if self.refuse and address.startswith(self.refuse):
            return f"550 5.1.1 <{address}>: Recipient address rejected: User unknown"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        self.received.append((session.auth_data, envelope.rcpt_tos, envelope.content))
        return "250 Message accepted"


def _authenticator(server, session, envelope, mechanism, auth_data):
    ok = isinstance(auth_data, LoginPassword) and (auth_data.login, auth_data.password) == (
        b"ann",
        b"smtp-secret",
    )
    return AuthResult(success=ok, handled=False, auth_data=auth_data.login if ok else None)


@pytest.fixture
def own_smtp():
    recorder = _Recorder(refuse="gone")
    controller = Controller(
        recorder,
        hostname="127.0.0.1",
        port=free_port(),
        authenticator=_authenticator,
        auth_required=True,
        auth_require_tls=False,
    )
    controller.start()
    yield controller, recorder
    controller.stop()


async def test_a_mailbox_sends_through_its_own_server_and_a_refusal_is_a_hard_bounce(
    client, runtime, manager, smtp, own_smtp
):
    controller, recorder = own_smtp
    server = {
        "host": "127.0.0.1",
        "port": controller.port,
        "security": "none",
        "username": "ann",
        "password": "smtp-secret",
    }
    box = await mailbox(client, manager, smtp=server)
    leads = await send_to(client, runtime, manager, box, "ana@lead.example", "gone@lead.example")
    # Authenticated as the mailbox's user, not through the default server (the sink).
    assert [(login, rcpt) for login, rcpt, _ in recorder.received] == [
        (b"ann", ["ana@lead.example"])
    ]
    assert await sent_mail(runtime) == []
    # 550 5.1.1 at RCPT: the address is suppressed and its sequences stop, like a DSN.
    assert (await enrollment(runtime, leads["gone@lead.example"]))["stop_reason"] == "bounced"
    assert (
        await scalar(
            runtime,
            "SELECT status FROM outreach.messages WHERE to_address IS NULL "
            "OR lead_id = (SELECT id FROM outreach.leads WHERE email = 'gone@lead.example')",
        )
        == "bounced"
    )
    assert (
        await scalar(
            runtime, "SELECT reason FROM outreach.suppressions WHERE address = 'gone@lead.example'"
        )
        == "bounced"
    )
    # A wrong password fails the send for good with the server's answer, and the password
    # never shows: not in the API, not in the error.
    wrong = await mailbox(
        client, manager, from_email="other@seller.example", smtp={**server, "password": "not-it"}
    )
    await send_to(client, runtime, manager, wrong, "dee@lead.example")
    error = await scalar(
        runtime,
        "SELECT m.error FROM outreach.messages m JOIN outreach.leads l ON l.id = m.lead_id "
        "WHERE l.email = 'dee@lead.example'",
    )
    assert error and "535" in error and "not-it" not in error
    listed = (await client.get("/v1/mailboxes", headers=manager)).text
    assert "smtp-secret" not in listed and "not-it" not in listed


# ---- cadence ------------------------------------------------------------------------------------


async def test_sends_from_one_mailbox_are_spaced_out(client, runtime, manager, smtp):
    box = await mailbox(client, manager, min_spacing_s=120, jitter_s=0)
    await send_to(
        client, runtime, manager, box, "a1@lead.example", "a2@lead.example", "a3@lead.example"
    )
    # One went out; the others hold slots 120 s apart and wait for them (no attempt spent).
    assert len(await sent_mail(runtime)) == 1
    slots = await scalar(
        runtime, "SELECT array_agg(not_before ORDER BY not_before) FROM outreach.messages"
    )
    assert [round((b - a).total_seconds()) for a, b in itertools.pairwise(slots)] == [
        120,
        120,
    ]
    waiting = await scalar(
        runtime,
        "SELECT count(*) FROM outreach.job_executions WHERE type = 'message.send' "
        "AND status = 'queued' AND attempts = 0 AND error LIKE 'spacing%'",
    )
    assert waiting == 2


async def test_jitter_varies_the_spacing(client, runtime, manager, smtp):
    box = await mailbox(client, manager, min_spacing_s=60, jitter_s=60)
    await send_to(client, runtime, manager, box, *[f"j{n}@lead.example" for n in range(6)])
    slots = await scalar(
        runtime, "SELECT array_agg(not_before ORDER BY not_before) FROM outreach.messages"
    )
    gaps = [(b - a).total_seconds() for a, b in itertools.pairwise(slots)]
    assert all(60 <= g <= 120 for g in gaps) and len({round(g) for g in gaps}) > 1


async def test_a_sequence_rotates_over_its_mailboxes_and_keeps_each_thread_on_one(
    client, runtime, manager, smtp
):
    one = await mailbox(client, manager, from_email="one@seller.example")
    two = await mailbox(client, manager, from_email="two@seller.example")
    response = await client.post(
        "/v1/sequences",
        json={
            "name": "Rotating",
            "mailbox_id": one,
            "mailbox_ids": [two],
            "steps": [
                {"channel": "email", "subject_template": "Idea", "body_template": "Hi"},
                {"channel": "email", "delay_minutes": 0, "body_template": "Following up"},
            ],
        },
        headers=manager,
    )
    seq = response.json()["id"]
    assert response.json()["mailbox_ids"] == [two]
    await client.post(f"/v1/sequences/{seq}/activate", headers=manager)
    leads = [await lead(client, manager, f"r{n}@lead.example") for n in range(4)]
    await client.post(f"/v1/sequences/{seq}/enrollments", json={"lead_ids": leads}, headers=manager)
    for _ in range(2):
        await tick(runtime)
        await drain_jobs(runtime)
    mails = await sent_mail(runtime)
    assert len(mails) == 8
    by_sender: dict[str, set[str]] = {}
    for mail in mails:
        by_sender.setdefault(mail["To"], set()).add(mail["From"].addresses[0].addr_spec)
    assert all(len(senders) == 1 for senders in by_sender.values())  # one thread, one mailbox
    counts = [
        sum(1 for s in by_sender.values() if box in s)
        for box in ("one@seller.example", "two@seller.example")
    ]
    assert counts == [2, 2]
    unknown = await client.post(
        "/v1/sequences",
        json={
            "name": "Bad",
            "mailbox_ids": ["00000000-0000-0000-0000-000000000000"],
            "steps": ONE_STEP,
        },
        headers=manager,
    )
    assert (
        unknown.status_code == 400
        and unknown.json()["error"]["details"]["field"] == "mailbox_ids[0]"
    )


def test_the_warm_up_ramp_grows_daily_up_to_the_limit() -> None:
    start = date(2026, 12, 1)
    fields = {f: None for f in Mailbox.__dataclass_fields__}
    box = Mailbox(
        **{
            **fields,
            "daily_limit": 50,
            "warmup_start": 10,
            "warmup_step": 5,
            "warmup_started_on": start,
        }
    )
    assert [daily_limit_on(box, start + timedelta(days=d)) for d in (0, 1, 4, 8, 30)] == [
        10,
        15,
        30,
        50,
        50,
    ]
    plain = Mailbox(**{**fields, "daily_limit": 50, "warmup_start": None})
    assert daily_limit_on(plain, start) == 50


async def test_a_mailbox_in_warm_up_sends_its_first_day_share(client, runtime, manager, smtp):
    box = await mailbox(client, manager, daily_limit=100, warmup_start=1, warmup_step=10)
    assert (await client.get(f"/v1/mailboxes/{box}", headers=manager)).json()[
        "warmup_started_on"
    ] == date.today().isoformat()
    await send_to(client, runtime, manager, box, "w1@lead.example", "w2@lead.example")
    assert len(await sent_mail(runtime)) == 1
    assert (
        await scalar(
            runtime, "SELECT count(*) FROM outreach.job_executions WHERE error LIKE '%daily limit%'"
        )
        == 1
    )


async def test_a_mailbox_pauses_itself_when_its_bounce_rate_passes_its_threshold(
    client, runtime, manager, smtp
):
    box = await mailbox(client, manager, bounce_pause_rate=0.05)
    addresses = [f"b{n}@lead.example" for n in range(20)]
    await send_to(client, runtime, manager, box, *addresses)
    assert len(await sent_mail(runtime)) == 20
    # One bounce in twenty is 5 %: not over. The second is.
    for n, address in enumerate(addresses[:2]):
        raw = corpus(
            "bounce_gmail_dsn_no_such_account.eml", await message_id_to(runtime, address), address
        )
        raw = raw.replace(b"gmail-dsn-1", f"gmail-dsn-{n}".encode())
        assert (await inbound(client, raw)).json()["bounce_type"] == "hard"
        shown = (await client.get(f"/v1/mailboxes/{box}", headers=manager)).json()
        assert shown["active"] is (n == 0)
    assert "bounce rate 2/20" in shown["paused_reason"]
    # Mail queued on a paused mailbox waits (no attempt spent), it does not fail.
    seq2 = await sequence(client, manager, box, steps=ONE_STEP)
    late = await lead(client, manager, "late@lead.example")
    await client.post(
        f"/v1/sequences/{seq2}/enrollments", json={"lead_ids": [late]}, headers=manager
    )
    await tick(runtime)
    await drain_jobs(runtime)
    assert len(await sent_mail(runtime)) == 20
    assert (
        await scalar(
            runtime,
            "SELECT m.status FROM outreach.messages m JOIN outreach.leads l ON l.id = m.lead_id "
            "WHERE l.email = 'late@lead.example'",
        )
        == "queued"
    )
    # The pause is on record as the system's, with its reason.
    assert "bounce rate" in await scalar(
        runtime,
        "SELECT changes->>'reason' FROM audit_log WHERE action = 'pause' AND actor = 'system' "
        f"AND entity_id = '{box}'",
    )


# ---- what comes back ----------------------------------------------------------------------------


async def test_a_soft_bounce_retries_later_without_suppressing(client, runtime, manager, smtp):
    box = await mailbox(client, manager)
    leads = await send_to(client, runtime, manager, box, "full@lead.example")
    original = await message_id_to(runtime, "full@lead.example")
    answer = (
        await inbound(client, corpus("soft_dsn_mailbox_full.eml", original, "full@lead.example"))
    ).json()
    assert answer["bounce_type"] == "soft" and answer["retry"] is True
    assert await scalar(runtime, "SELECT count(*) FROM outreach.suppressions") == 0
    assert (await enrollment(runtime, leads["full@lead.example"]))["status"] != "stopped"
    status, soft, error = await scalar(
        runtime, "SELECT array[status, soft_bounces::text, error] FROM outreach.messages"
    )
    assert (status, soft) == ("queued", "1") and "5.2.2" in error
    # Queued again for hours from now, not now.
    later = await scalar(
        runtime,
        "SELECT min(execute_after) - now() FROM pgqueuer WHERE entrypoint = 'message.send' "
        "AND status = 'queued'",
    )
    assert later > timedelta(hours=3)


async def test_an_opt_out_reply_suppresses_and_a_delivery_report_marks_delivered(
    client, runtime, manager, smtp
):
    box = await mailbox(client, manager)
    leads = await send_to(client, runtime, manager, box, "bob@lead.example", "dan@lead.example")
    bob = await message_id_to(runtime, "bob@lead.example")
    dan = await message_id_to(runtime, "dan@lead.example")
    out = (await inbound(client, corpus("optout_de.eml", bob, "bob@lead.example"))).json()
    assert out["kind"] == "opt_out" and out["stopped"] == 1
    assert (await enrollment(runtime, leads["bob@lead.example"]))["stop_reason"] == "unsubscribed"
    assert (
        await scalar(
            runtime, "SELECT reason FROM outreach.suppressions WHERE address = 'bob@lead.example'"
        )
        == "unsubscribed"
    )
    report = (
        await inbound(client, corpus("delivered_dsn_success.eml", dan, "dan@lead.example"))
    ).json()
    assert report["kind"] == "delivered"
    assert (
        await scalar(
            runtime, f"SELECT status FROM outreach.messages WHERE message_id_header = '{dan}'"
        )
        == "delivered"
    )
    # A delay warning changes nothing.
    delayed = (
        await inbound(client, corpus("delayed_dsn_still_trying.eml", dan, "dan@lead.example"))
    ).json()
    assert delayed["kind"] == "delayed"
    assert (await enrollment(runtime, leads["dan@lead.example"]))["status"] != "stopped"


# ---- editing and deleting mailboxes ----------------------------------------------------------


async def test_a_mailbox_is_edited_keeping_its_password_and_deleted_when_unused(
    client, runtime, manager, smtp
):
    server = {
        "host": "smtp.seller.example",
        "port": 587,
        "security": "starttls",
        "username": "ann",
        "password": "keep-me",
    }
    box = await mailbox(client, manager, smtp=server)
    before = await scalar(
        runtime, f"SELECT smtp_password_enc FROM outreach.mailboxes WHERE id = '{box}'"
    )
    body = {
        "name": "Renamed",
        "from_email": "sales@seller.example",
        "daily_limit": 20,
        "smtp": {k: v for k, v in server.items() if k != "password"},
    }
    edited = await client.put(f"/v1/mailboxes/{box}", json=body, headers=manager)
    assert edited.status_code == 200, edited.text
    assert edited.json()["name"] == "Renamed" and edited.json()["smtp_password_set"] is True
    assert (
        await scalar(
            runtime, f"SELECT smtp_password_enc FROM outreach.mailboxes WHERE id = '{box}'"
        )
        == before
    )
    # Another user on the server needs its own password.
    other_user = {**body, "smtp": {**body["smtp"], "username": "bo"}}
    refused = await client.put(f"/v1/mailboxes/{box}", json=other_user, headers=manager)
    assert refused.status_code == 400 and refused.json()["error"]["code"] == "password_required"
    missing = await client.put(
        "/v1/mailboxes/00000000-0000-0000-0000-000000000000", json=body, headers=manager
    )
    assert missing.status_code == 404
    # In use by a live sequence: refused, with the sequence named.
    seq = await sequence(client, manager, box, steps=ONE_STEP)
    in_use = await client.delete(f"/v1/mailboxes/{box}", headers=manager)
    assert in_use.status_code == 409 and in_use.json()["error"]["details"]["sequences"] == ["Intro"]
    await client.delete(f"/v1/sequences/{seq}", headers=manager)
    assert (await client.delete(f"/v1/mailboxes/{box}", headers=manager)).status_code == 200
    assert (await client.get(f"/v1/mailboxes/{box}", headers=manager)).status_code == 404
    assert (await client.delete(f"/v1/mailboxes/{box}", headers=manager)).status_code == 404


@pytest.mark.parametrize(
    "bad",
    [
        {"smtp": {"host": "smtp.example.com\r\nX: y"}},
        {"smtp": {"host": "<b>x</b>"}},
        {"smtp": {"host": "smtp.example.com", "port": 0}},
        {"smtp": {"host": "smtp.example.com", "username": "ann"}},
        {"imap": {"host": "imap.example.com", "username": "ann"}},
        {"imap": {"host": "imap.example.com", "username": "ann\nx", "password": "p"}},
        {
            "imap": {
                "host": "imap.example.com",
                "username": "a",
                "password": "p",
                "folder": "INBOX\r\nA1 DELETE INBOX",
            }
        },
        {"min_spacing_s": -1},
        {"warmup_start": 0},
        {"bounce_pause_rate": 0},
        {"smtp": {"host": "smtp.example.com", "password": "x\u0000"}, "extra": 1},
    ],
)
async def test_bad_mailbox_settings_get_a_field_error(client, manager, bad) -> None:
    body = {"name": "S", "from_email": "s@seller.example", **bad}
    response = await client.post("/v1/mailboxes", json=body, headers=manager)
    assert response.status_code in (400, 422), response.text
    assert response.json()["error"]["code"] in (
        "invalid_request",
        "password_required",
        "nul_character",
    )


async def test_outside_dev_a_mailbox_cannot_reach_private_addresses(
    client, runtime, manager, smtp, dovecot, own_smtp
) -> None:
    """An operator's form must not turn the worker into a probe of the internal network
    (or the cloud metadata service): in production SMTP and IMAP hosts must be public."""
    controller, recorder = own_smtp
    # Saved with private networks allowed (a mailbox from before), then the worker is in
    # production: it refuses to connect.
    box = await mailbox(
        client,
        manager,
        smtp={
            "host": "127.0.0.1",
            "port": controller.port,
            "security": "none",
            "username": "ann",
            "password": "smtp-secret",
        },
        imap={
            "host": dovecot.host,
            "port": dovecot.port,
            "security": "none",
            "username": "ann@sales.example",
            "password": USERS["ann@sales.example"],
        },
    )
    runtime.settings.allow_private_networks = False
    try:
        polled = await poll_mailbox(runtime, box)
        assert "destination_not_allowed" in polled["error"] or "non-public" in polled["error"]
        await send_to(client, runtime, manager, box, "ana@lead.example")
        assert recorder.received == []
        error = await scalar(runtime, "SELECT error FROM outreach.messages")
        assert "non-public" in error
        # And such a host is refused when saved, naming the field.
        refused = await client.post(
            "/v1/mailboxes",
            json={
                "name": "Meta",
                "from_email": "meta@seller.example",
                "smtp": {"host": "169.254.169.254", "port": 25, "security": "none"},
            },
            headers=manager,
        )
        assert refused.status_code == 400
        assert refused.json()["error"]["code"] == "destination_not_allowed"
        assert refused.json()["error"]["details"]["field"] == "smtp.host"
    finally:
        runtime.settings.allow_private_networks = None
