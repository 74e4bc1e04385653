"""WhatsApp and SMS as the carriers and Meta require: approved templates outside the
24-hour window, free text inside it, numbers in E.164, quiet hours in the lead's zone."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from pydantic import SecretStr

from leadflood.messaging.phones import e164, time_zone
from leadflood.sequences.sending import wait_out_quiet_hours
from leadflood.sequences.tasks import tick
from tests.conftest import drain_jobs
from tests.outreach.helpers import scalar
from tests.outreach.test_sequences import _trengo_hook, lead
from tests.provider_fakes import FakeTrengo

TEMPLATE_STEP = {
    "channel": "whatsapp",
    "body_template": "Hi {{ first_name }}, Sam here.",
    "whatsapp_template_id": 4711,
    "template_params": ["{{ first_name }}"],
}


@pytest.fixture
def trengo(runtime):
    with FakeTrengo() as fake:
        s = runtime.settings
        s.trengo_api_key, s.trengo_base_url = SecretStr("trengo-test-token"), fake.base
        s.trengo_channel_id, s.trengo_sms_channel_id = 77, 78
        s.trengo_webhook_secret = SecretStr("trengo-hook")
        yield fake


async def phone_sequence(client, manager, steps, **fields) -> str:
    body = {"name": "Phone", "steps": steps, "quiet_start": None, "quiet_end": None, **fields}
    response = await client.post("/v1/sequences", json=body, headers=manager)
    assert response.status_code == 201, response.text
    seq = response.json()["id"]
    assert (await client.post(f"/v1/sequences/{seq}/activate", headers=manager)).status_code == 200
    return seq


async def enroll_and_send(client, runtime, manager, seq, lead_id) -> None:
    await client.post(
        f"/v1/sequences/{seq}/enrollments", json={"lead_ids": [lead_id]}, headers=manager
    )
    await tick(runtime)
    await drain_jobs(runtime)


def test_numbers_are_written_in_e164_and_know_their_zone() -> None:
    assert e164("+1 (602) 555-0101") == "+16025550101"
    assert e164("06 12345678", "NL") == "+31612345678"
    assert e164("06 12345678") is None  # no country code, no country: unreadable
    assert e164("12") is None and e164("") is None and e164(None) is None
    assert time_zone("+31612345678") == "Europe/Amsterdam"
    assert time_zone("+16025550101") == "America/Phoenix"


def test_quiet_hours_across_midnight_and_within_a_day() -> None:
    zone = "Europe/Amsterdam"
    at = lambda h, m=0: datetime(2026, 12, 1, h, m, tzinfo=ZoneInfo(zone)).astimezone(UTC)  # noqa: E731
    night = (time(20, 0), time(9, 0))
    assert wait_out_quiet_hours(at(12), zone, *night) is None
    assert wait_out_quiet_hours(at(21), zone, *night) == timedelta(hours=12)
    assert wait_out_quiet_hours(at(8, 30), zone, *night) == timedelta(minutes=30)
    assert wait_out_quiet_hours(at(9), zone, *night) is None
    lunch = (time(12, 0), time(13, 0))
    assert wait_out_quiet_hours(at(12, 15), zone, *lunch) == timedelta(minutes=45)
    assert wait_out_quiet_hours(at(13), zone, *lunch) is None
    assert wait_out_quiet_hours(at(21), zone, None, None) is None


async def test_a_whatsapp_step_needs_an_approved_template(client, manager) -> None:
    plain = {"channel": "whatsapp", "body_template": "Hi"}
    response = await client.post(
        "/v1/sequences", json={"name": "WA", "steps": [plain]}, headers=manager
    )
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "whatsapp_template_required"
    assert error["details"]["field"] == "steps[1].whatsapp_template_id"
    bad_param = {**TEMPLATE_STEP, "template_params": ["{{ nickname }}"]}
    response = await client.post(
        "/v1/sequences", json={"name": "WA", "steps": [bad_param]}, headers=manager
    )
    assert response.status_code == 400
    half = await client.post(
        "/v1/sequences",
        json={"name": "WA", "steps": [TEMPLATE_STEP], "quiet_start": "20:00", "quiet_end": None},
        headers=manager,
    )
    assert half.status_code == 400 and half.json()["error"]["code"] == "invalid_quiet_hours"


async def test_sms_goes_out_in_e164_on_its_channel_and_a_bad_number_fails_clearly(
    client, runtime, manager, trengo
) -> None:
    seq = await phone_sequence(
        client, manager, [{"channel": "sms", "body_template": "Hi {{ first_name }}"}]
    )
    dutch = await lead(client, manager, "jan@lead.example", phone="06 12345678", country="NL")
    await enroll_and_send(client, runtime, manager, seq, dutch)
    (call,) = trengo.calls("/api/v2/messages")
    assert call.body == {
        "channel_id": 78,
        "contact_identifier": "+31612345678",
        "message": "Hi Ana",
    }
    nowhere = await lead(client, manager, "kim@lead.example", phone="12345")
    await enroll_and_send(client, runtime, manager, seq, nowhere)
    assert len(trengo.calls("/api/v2/messages")) == 1
    status, error = await scalar(
        runtime,
        "SELECT array[m.status, m.error] FROM outreach.messages m "
        "JOIN outreach.leads l ON l.id = m.lead_id WHERE l.email = 'kim@lead.example'",
    )
    assert status == "failed" and "invalid_phone" in error


async def test_phone_steps_wait_out_quiet_hours_in_the_leads_own_zone(
    client, runtime, manager, trengo
) -> None:
    # Quiet from an hour ago to an hour from now in Phoenix, the zone of the lead's number
    # (the sequence's own zone, Tokyo, is for numbers that name none).
    phoenix = datetime.now(ZoneInfo("America/Phoenix"))
    quiet = {
        "quiet_start": (phoenix - timedelta(hours=1)).strftime("%H:%M"),
        "quiet_end": (phoenix + timedelta(hours=1)).strftime("%H:%M"),
        "timezone": "Asia/Tokyo",
    }
    seq = await phone_sequence(client, manager, [TEMPLATE_STEP], **quiet)
    ana = await lead(client, manager, "ana@lead.example", phone="+1 602 555 0101")
    await enroll_and_send(client, runtime, manager, seq, ana)
    assert trengo.calls("/api/v2/wa_sessions") == []
    waiting = await scalar(
        runtime,
        "SELECT error FROM outreach.job_executions WHERE type = 'message.send' "
        "AND status = 'queued' AND attempts = 0",
    )
    assert waiting == "quiet hours in America/Phoenix"


async def test_a_manual_whatsapp_reply_is_free_text_only_inside_the_24_hour_window(
    client, runtime, manager, trengo
) -> None:
    seq = await phone_sequence(client, manager, [TEMPLATE_STEP])
    ana = await lead(client, manager, "ana@lead.example", phone="+1 602 555 0101")
    await enroll_and_send(client, runtime, manager, seq, ana)
    answer = await _trengo_hook(client, "webhook_inbound_whatsapp")
    assert answer.json()["outcome"] == "recorded"
    conversation = await scalar(
        runtime, "SELECT id::text FROM outreach.conversations WHERE channel = 'whatsapp'"
    )
    sent = await client.post(
        f"/v1/conversations/{conversation}/replies",
        json={"body": "Great, call at 3?"},
        headers=manager,
    )
    assert sent.status_code == 202, sent.text
    await drain_jobs(runtime)
    assert trengo.calls("/api/v2/messages")[-1].body == {
        "channel_id": 77,
        "contact_identifier": "+16025550101",
        "message": "Great, call at 3?",
    }
    # A day later the window is closed: no free text, a clear answer instead.
    await scalar(
        runtime,
        "UPDATE outreach.messages SET received_at = now() - interval '25 hours' "
        "WHERE direction = 'inbound' RETURNING 1",
    )
    closed = await client.post(
        f"/v1/conversations/{conversation}/replies",
        json={"body": "Still there?"},
        headers=manager,
    )
    assert closed.status_code == 409
    assert closed.json()["error"]["code"] == "whatsapp_window_closed"
