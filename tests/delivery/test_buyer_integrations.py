"""Buyers as real partners: their own URL, method, format and fields (sandboxed templates),
credentials, and answers read by their rules, against a real local buyer server."""

from __future__ import annotations

import base64
import hashlib
import hmac
from urllib.parse import parse_qs

import orjson
import pytest
from lxml import etree

from leadflood.delivery.tasks import DeliveryRun
from tests.buyer_server import BuyerServer, Reply
from tests.conftest import auth_headers
from tests.delivery.test_delivery import routed_lead, row

SECRET = "whsec-1"
CREDENTIAL = "crm-pass-7Qz"


@pytest.fixture
def buyer_server():
    with BuyerServer() as server:
        yield server


async def deliver(runtime, lead):
    return await DeliveryRun(runtime).deliver(lead)


async def test_a_json_crm_gets_its_own_fields_credentials_and_its_answer_is_read(
    runtime, buyer_server
) -> None:
    integration = {
        "url": buyer_server.url("crm/{{ offer.slug }}/leads"),
        "format": "json",
        "fields": {
            "contact.FirstName": "{{ first_name | upper }}",
            "contact.Phone": "{{ phone | national }}",
            "contact.Zip": "{{ postal_code }}",
            "source": "{{ custom.utm_source | default('direct') }}",
            "externalId": "{{ lead_id }}",
            "price": "{{ price }}",
            "vendor": "{{ source.name }}",
        },
        "headers": {"X-Campaign": "{{ offer.slug }}"},
        "auth": "basic",
        "auth_username": "leadflood",
    }
    rules = {
        "outcome_term": "accepted",
        "outcome_path": "$.result.status",
        "reference_path": "$.result.id",
        "price_path": "$.result.payout",
    }
    lead = await routed_lead(
        runtime,
        buyer_server.url(),
        integration=integration,
        integration_secret=CREDENTIAL,
        response_rules=rules,
    )
    buyer_server.default = Reply(
        body='{"result": {"status": "Accepted", "id": "CRM-1042", "payout": "$31.50"}}'
    )
    outcome = await deliver(runtime, lead)
    assert outcome.result == "delivered"
    (sent,) = buyer_server.received
    assert sent.path.startswith("crm/") and sent.path.endswith("/leads")
    body = orjson.loads(sent.body)
    assert body["contact"]["FirstName"] == "TEST" and body["source"] == "fb"
    assert body["externalId"] == str(lead) and body["price"] == "25.00"
    assert body["vendor"]  # the lead's source, by name
    assert (
        sent.headers["authorization"]
        == "Basic " + base64.b64encode(f"leadflood:{CREDENTIAL}".encode()).decode()
    )
    assert sent.headers["idempotency-key"] == f"lead:{lead}"
    expected = hmac.new(SECRET.encode(), sent.body, hashlib.sha256).hexdigest()
    assert sent.headers["x-leadflood-signature"] == f"sha256={expected}"
    delivery = await row(
        runtime,
        "SELECT d.status::text AS status, d.buyer_reference, d.buyer_price_cents, "
        "l.billing_status::text AS billing FROM deliveries d JOIN leads l ON l.id = d.lead_id "
        "WHERE d.lead_id = :l",
        l=lead,
    )
    assert delivery == {
        "status": "succeeded",
        "buyer_reference": "CRM-1042",
        "buyer_price_cents": 3150,
        "billing": "billable",
    }


async def test_a_200_that_says_duplicate_is_a_rejection_not_a_sale(runtime, buyer_server) -> None:
    """A form-post lead system answering plain text: DUPLICATE means refused."""
    integration = {
        "url": buyer_server.url("post.aspx"),
        "format": "form",
        "fields": {"fname": "{{ first_name }}", "email": "{{ email }}", "zip": "{{ postal_code }}"},
    }
    rules = {"outcome_term": "DUPLICATE", "match_means": "rejected"}
    lead = await routed_lead(
        runtime, buyer_server.url(), integration=integration, response_rules=rules
    )
    buyer_server.default = Reply(body="DUPLICATE", media_type="text/plain")
    outcome = await deliver(runtime, lead)
    assert outcome.result == "rejected"
    (sent,) = buyer_server.received
    assert sent.headers["content-type"] == "application/x-www-form-urlencoded"
    assert parse_qs(sent.body.decode())["email"] == ["ana@example.com"]
    state = await row(
        runtime,
        "SELECT d.status::text AS status, d.reject_reason, l.status::text AS lead, "
        "l.billing_status::text AS billing, "
        "(SELECT outcome::text FROM delivery_attempts a WHERE a.delivery_id = d.id) AS attempt "
        "FROM deliveries d JOIN leads l ON l.id = d.lead_id WHERE d.lead_id = :l",
        l=lead,
    )
    # Refused: not billed; the lead is back for the next buyer (the waterfall).
    assert state == {
        "status": "failed",
        "reject_reason": "DUPLICATE",
        "lead": "validated",
        "billing": "unbilled",
        "attempt": "rejected",
    }
    # Not retried at this buyer.
    assert (await deliver(runtime, lead)).result == "already_failed"
    assert buyer_server.count() == 1


async def test_xml_posts_and_an_xml_answer_read_by_xpath(runtime, buyer_server) -> None:
    integration = {
        "url": buyer_server.url("xmlpost"),
        "format": "xml",
        "xml_root": "Lead",
        "fields": {"Contact.First": "{{ first_name }}", "Contact.Email": "{{ email }}"},
    }
    rules = {
        "outcome_term": "^(success|ok)$",
        "outcome_regex": True,
        "outcome_path": "/Response/Status",
        "reason_path": "/Response/Message",
    }
    lead = await routed_lead(
        runtime, buyer_server.url(), integration=integration, response_rules=rules
    )
    buyer_server.default = Reply(
        body="<Response><Status>Failure</Status><Message>outside our area</Message></Response>",
        media_type="application/xml",
    )
    assert (await deliver(runtime, lead)).result == "rejected"
    sent = etree.fromstring(buyer_server.received[0].body)
    assert sent.tag == "Lead" and sent.findtext("Contact/Email") == "ana@example.com"
    assert await row(runtime, "SELECT reject_reason FROM deliveries") == {
        "reject_reason": "outside our area"
    }


async def test_a_get_with_a_query_string_and_an_api_key_header(runtime, buyer_server) -> None:
    integration = {
        "method": "GET",
        "url": buyer_server.url("ping?campaign=7"),
        "format": "query",
        "fields": {"zip": "{{ postal_code }}", "phone": "{{ phone | digits }}"},
        "auth": "api_key_header",
        "api_key_header": "X-Partner-Key",
    }
    lead = await routed_lead(
        runtime, buyer_server.url(), integration=integration, integration_secret=CREDENTIAL
    )
    assert (await deliver(runtime, lead)).result == "delivered"
    (sent,) = buyer_server.received
    assert sent.method == "GET" and sent.body == b""
    query = parse_qs(sent.query)
    assert query["campaign"] == ["7"] and "zip" in query
    assert sent.headers["x-partner-key"] == CREDENTIAL


async def test_a_field_the_lead_lacks_or_a_sandbox_escape_fails_clearly_and_sends_nothing(
    runtime, buyer_server
) -> None:
    for template, expected in (
        ("{{ nickname }}", "'nickname' is undefined"),
        ("{{ ''.__class__.__mro__[1].__subclasses__() }}", "unsafe"),
        ("{{ 'x' * 1000000000 }}", "too large"),
    ):
        integration = {"url": buyer_server.url("crm"), "fields": {"a": template}}
        lead = await routed_lead(runtime, buyer_server.url(), integration=integration)
        outcome = await deliver(runtime, lead)
        assert outcome.result == "failed", template
        error = (
            await row(runtime, "SELECT last_error FROM deliveries WHERE lead_id = :l", l=lead)
        )["last_error"]
        assert error.startswith("integration_config:") and expected in error
    assert buyer_server.count() == 0


async def test_a_credential_never_shows_in_an_answer_an_error_or_the_api(
    runtime, client, buyer_server
) -> None:
    integration = {"url": buyer_server.url("crm"), "auth": "bearer"}
    lead = await routed_lead(
        runtime,
        buyer_server.url(),
        integration=integration,
        integration_secret=CREDENTIAL,
        response_rules={"outcome_term": "never", "outcome_regex": False},
    )
    buyer_server.default = Reply(echo_headers=True, media_type="text/plain")  # a leaky buyer
    assert (await deliver(runtime, lead)).result == "rejected"
    stored = await row(
        runtime,
        "SELECT d.reject_reason, d.last_error, a.response_excerpt, b.integration_secret "
        "FROM deliveries d JOIN delivery_attempts a ON a.delivery_id = d.id "
        "JOIN buyers b ON b.id = d.buyer_id WHERE d.lead_id = :l",
        l=lead,
    )
    assert CREDENTIAL in buyer_server.received[0].headers["authorization"]
    for value in (stored["reject_reason"], stored["last_error"], stored["response_excerpt"]):
        assert CREDENTIAL not in value and "[redacted]" in value
    assert stored["integration_secret"].startswith("v1:")  # encrypted at rest
    admin = await auth_headers(client, runtime, "admin")
    buyer_id = (await row(runtime, "SELECT buyer_id FROM deliveries"))["buyer_id"]
    shown = (await client.get(f"/v1/admin/buyers/{buyer_id}", headers=admin)).json()
    assert shown["integration_secret_set"] is True and "integration_secret" not in shown
    assert CREDENTIAL not in str(shown)


@pytest.mark.parametrize(
    ("integration", "rules"),
    [
        ({"url": "ftp://x.example/"}, None),
        ({"url": "https://x.example/\r\nX: y"}, None),
        ({"url": "https://x.example/", "fields": {"a": "{{ unclosed"}}, None),
        ({"url": "https://x.example/", "fields": {"bad name": "x"}}, None),
        ({"url": "https://x.example/", "headers": {"X-A": "a\nb"}}, None),
        ({"url": "https://x.example/", "format": "yaml"}, None),
        (None, {"outcome_term": "(", "outcome_regex": True}),
        (None, {"outcome_path": "$..[?("}),
        (None, {"outcome_path": "Response/Status"}),
        (None, {"success_statuses": [99]}),
    ],
)
async def test_a_broken_integration_is_refused_when_saved(
    runtime, client, integration, rules
) -> None:
    admin = await auth_headers(client, runtime, "admin")
    body = {"name": "CRM", "webhook_url": "https://crm.example/leads"}
    if integration is not None:
        body["integration"] = integration
    if rules is not None:
        body["response_rules"] = rules
    response = await client.post("/v1/admin/buyers", json=body, headers=admin)
    assert response.status_code == 400, response.text
    assert response.json()["error"]["code"] in ("invalid_request", "nul_character")


async def test_testing_a_buyer_shows_the_request_masked_and_reads_the_answer(
    runtime, client, buyer_server
) -> None:
    integration = {
        "url": buyer_server.url("crm"),
        "format": "form",
        "fields": {"first": "{{ first_name }}", "zip": "{{ postal_code }}"},
        "auth": "bearer",
    }
    await routed_lead(
        runtime,
        buyer_server.url(),
        integration=integration,
        integration_secret=CREDENTIAL,
        response_rules={"outcome_term": "DUPLICATE", "match_means": "rejected"},
    )
    buyer_id = (await row(runtime, "SELECT id FROM buyers"))["id"]
    admin = await auth_headers(client, runtime, "admin")
    dry = await client.post(f"/v1/admin/buyers/{buyer_id}/test", json={}, headers=admin)
    assert dry.status_code == 200, dry.text
    shown = dry.json()
    assert shown["sent"] is False and shown["response"] is None and shown["problem"] is None
    assert shown["request"]["method"] == "POST" and shown["request"]["url"].endswith("/crm")
    assert shown["request"]["body"] == "first=Test&zip=85001"
    assert shown["request"]["headers"]["Authorization"] == "••••••"
    assert CREDENTIAL not in dry.text and SECRET not in dry.text
    assert buyer_server.count() == 0  # a dry run sends nothing

    buyer_server.default = Reply(body="DUPLICATE", media_type="text/plain")
    sent = (
        await client.post(f"/v1/admin/buyers/{buyer_id}/test", json={"send": True}, headers=admin)
    ).json()
    assert sent["sent"] is True
    assert sent["response"]["status"] == 200 and sent["response"]["outcome"] == "rejected"
    assert sent["response"]["reason"] == "DUPLICATE"
    (received,) = buyer_server.received
    assert received.headers["x-leadflood-test"] == "true"
    assert received.headers["authorization"] == f"Bearer {CREDENTIAL}"
    # Nothing recorded as a delivery of a real lead.
    assert (await row(runtime, "SELECT count(*) AS n FROM delivery_attempts"))["n"] == 0
    agent = await auth_headers(client, runtime, "agent")
    denied = await client.post(f"/v1/admin/buyers/{buyer_id}/test", json={}, headers=agent)
    assert denied.status_code == 403
    missing = await client.post(
        "/v1/admin/buyers/00000000-0000-0000-0000-000000000000/test", json={}, headers=admin
    )
    assert missing.status_code == 404


async def test_the_buyer_page_has_a_test_button_that_shows_the_request(
    runtime, buyer_server
) -> None:
    from tests.web.test_pages import ORIGIN, browser

    integration = {"url": buyer_server.url("crm"), "auth": "bearer", "fields": {"z": "{{ city }}"}}
    await routed_lead(
        runtime, buyer_server.url(), integration=integration, integration_secret=CREDENTIAL
    )
    buyer_id = (await row(runtime, "SELECT id FROM buyers"))["id"]
    web = await browser(runtime, "admin")
    try:
        page = await web.get(f"/config/buyers/{buyer_id}")
        assert 'id="buyer-test"' in page.text
        panel = await web.post(
            f"/config/buyers/{buyer_id}/test",
            data={"send": "1"},
            headers={**ORIGIN, "hx-request": "true"},
        )
    finally:
        await web.aclose()
    assert panel.status_code == 200
    assert 'data-sent="yes"' in panel.text and "Authorization: ••••••" in panel.text
    assert CREDENTIAL not in panel.text
    assert 'data-outcome="accepted"' in panel.text
