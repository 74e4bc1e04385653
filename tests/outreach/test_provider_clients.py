"""Apollo and Hunter clients against local fake servers, error cases included."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest

from leadflood.core.circuit import CircuitBreaker
from leadflood.core.providers import PermanentProviderError, TransientProviderError
from leadflood.integrations.apollo.client import ApolloClient
from leadflood.integrations.hunter.client import HunterClient
from leadflood.prospecting.sources import map_apollo_person
from tests.provider_fakes import (
    APOLLO_MATCH,
    APOLLO_SEARCH,
    FakeApollo,
    FakeHunter,
    Scripted,
    fixture,
    hunter_error,
)


@pytest.fixture
def apollo():
    with FakeApollo(total=5, with_pagination=True) as server:
        yield server


@pytest.fixture
def hunter():
    with FakeHunter() as server:
        yield server


async def apollo_call(server, **kwargs):
    client = ApolloClient("apollo-test-key", server.base)
    try:
        return await client.search_people(**kwargs)
    finally:
        await client.close()


async def test_apollo_search_sends_documented_filters_and_reads_pagination(apollo) -> None:
    page = await apollo_call(
        apollo,
        filters={"person_titles": ["VP of Sales"], "person_seniorities": ["vp"], "q_keywords": ""},
        page=2,
        per_page=2,
    )
    (seen,) = apollo.calls(APOLLO_SEARCH)
    assert seen.headers["x-api-key"] == "apollo-test-key"
    assert seen.body == {
        "person_titles": ["VP of Sales"],
        "person_seniorities": ["vp"],
        "page": 2,
        "per_page": 2,
    }
    assert [p["id"] for p in page.people] == ["apollo-3", "apollo-4"]
    assert page.total_pages == 3 and page.has_more is True
    assert page.requests_left == {"x-minute-requests-left": 199}


async def test_apollo_per_page_is_capped_at_100(apollo) -> None:
    await apollo_call(apollo, filters={}, page=1, per_page=500)
    assert apollo.calls(APOLLO_SEARCH)[0].body["per_page"] == 100


async def test_apollo_documented_search_without_pagination_object() -> None:
    with FakeApollo(total=3) as server:
        last = await apollo_call(server, filters={}, page=2, per_page=2)
        assert last.total_entries == 3 and last.has_more is False
        server.script(APOLLO_SEARCH, Scripted(200, {"people": [{"id": "a"}, {"id": "b"}]}))
        bare = await apollo_call(server, filters={}, page=1, per_page=2)
        assert bare.total_entries is None and bare.has_more is True  # a full page: ask again


def test_the_documented_search_shape_maps_to_prospects_without_contact_data() -> None:
    """People API Search never returns an email, a phone or a full last name."""
    people = fixture("apollo", "people_api_search")["people"]
    mapped = [map_apollo_person(p) for p in people]
    assert [m.provider_ref for m in mapped] == [p["id"] for p in people]
    assert all(m.fields["email"] is None and m.fields["last_name"] is None for m in mapped)
    assert all(m.fields["phone"] is None for m in mapped)
    assert [m.fields["company"] for m in mapped] == [p["organization"]["name"] for p in people]
    assert mapped[0].fields["first_name"] == "Dana" and mapped[0].fields["title"] == "VP of Sales"


def test_the_documented_match_shape_maps_the_contact_data() -> None:
    person = fixture("apollo", "people_match")["person"]
    fields = map_apollo_person(person).fields
    assert (fields["email"], fields["last_name"]) == ("dana.reyes@acme-solar.example", "Reyes")
    assert fields["company_domain"] == "acme-solar.example" and fields["company_size"] == "140"
    assert fields["industry"] == "renewables & environment" and fields["city"] == "Phoenix"


async def test_apollo_people_match_by_id(apollo) -> None:
    client = ApolloClient("apollo-test-key", apollo.base)
    try:
        found = await client.match_person("apollo-2")
        missing = await client.match_person("apollo-99")
    finally:
        await client.close()
    assert found is not None and found["email"] == "first2.last2@acme2.example"
    assert missing is None
    first = apollo.calls(APOLLO_MATCH)[0]
    assert first.query == {
        "id": "apollo-2",
        "reveal_personal_emails": "false",
        "reveal_phone_number": "false",
    }
    assert first.headers["x-api-key"] == "apollo-test-key"


async def test_apollo_bulk_match_keeps_the_order_and_reads_a_miss_as_none(apollo) -> None:
    client = ApolloClient("apollo-test-key", apollo.base)
    try:
        found = await client.bulk_match(["apollo-3", "apollo-99", "apollo-1"])
        with pytest.raises(ValueError):
            await client.bulk_match([f"apollo-{n}" for n in range(11)])
    finally:
        await client.close()
    assert [p["id"] if p else None for p in found] == ["apollo-3", None, "apollo-1"]
    (call,) = apollo.calls("/api/v1/people/bulk_match")
    assert call.body == {"details": [{"id": "apollo-3"}, {"id": "apollo-99"}, {"id": "apollo-1"}]}


async def test_an_exhausted_apollo_window_is_waited_out(apollo) -> None:
    apollo.script(
        APOLLO_MATCH,
        Scripted(
            429,
            fixture("apollo", "error_rate_limited"),
            {"x-minute-requests-left": "0", "x-hourly-requests-left": "120"},
        ),
    )
    client = ApolloClient("apollo-test-key", apollo.base)
    try:
        with pytest.raises(TransientProviderError) as raised:
            await client.match_person("apollo-1")
    finally:
        await client.close()
    assert raised.value.retry_after == timedelta(minutes=1)
    assert "maximum number of api calls" in str(raised.value)


@pytest.mark.parametrize(
    ("status", "body", "code"),
    [
        (401, {"error": "Invalid access credentials."}, "provider_auth_failed"),
        (
            403,
            {"error": "api/v1/mixed_people/api_search is not accessible with this api_key"},
            "provider_auth_failed",
        ),
        (422, {"error": "Value too long for person_titles"}, "provider_rejected_request"),
    ],
)
async def test_apollo_client_errors_are_permanent_with_the_message(apollo, status, body, code):
    apollo.script(APOLLO_SEARCH, Scripted(status, body))
    with pytest.raises(PermanentProviderError) as caught:
        await apollo_call(apollo, filters={})
    assert caught.value.code == code and caught.value.status == status
    assert body["error"] in caught.value.message


async def test_apollo_429_and_5xx_are_transient_with_a_wait(apollo) -> None:
    apollo.script(
        APOLLO_SEARCH,
        Scripted(429, {"error": "rate limited"}, {"Retry-After": "7"}),
        Scripted(429, {"message": "slow down"}, {"x-minute-requests-left": "0"}),
        Scripted(503, "<html>upstream</html>"),
    )
    for expected in (timedelta(seconds=7), timedelta(minutes=1)):
        with pytest.raises(TransientProviderError) as caught:
            await apollo_call(apollo, filters={})
        assert caught.value.code == "rate_limited" and caught.value.retry_after == expected
    with pytest.raises(TransientProviderError) as caught:
        await apollo_call(apollo, filters={})
    assert caught.value.code == "provider_unavailable"


async def test_unreachable_provider_is_transient() -> None:
    client = ApolloClient("k", "http://127.0.0.1:9")
    with pytest.raises(TransientProviderError) as caught:
        await client.search_people({})
    await client.close()
    assert caught.value.code == "connection_error"


def test_apollo_mapping_drops_locked_emails_and_obfuscated_names() -> None:
    mapped = map_apollo_person(
        {
            "id": "x1",
            "first_name": "Ana",
            "last_name_obfuscated": "Lo***z",
            "email": "email_not_unlocked@domain.com",
            "organization": {"name": "Acme", "website_url": "https://www.acme.example/"},
        }
    )
    assert mapped.fields["last_name"] is None and mapped.fields["email"] is None
    assert mapped.fields["company_domain"] == "www.acme.example"


async def hunter_client(server) -> HunterClient:
    return HunterClient("hunter-test-key", server.base)


async def test_hunter_finder_verifier_and_company_enrichment(hunter) -> None:
    client = await hunter_client(hunter)
    found = await client.email_finder(domain="acme.example", first_name="Ana", last_name="Lopez")
    by_company = await client.email_finder(company="Zeta Corp", full_name="Zed Zulu")
    verified = await client.email_verifier(found["email"])
    org = await client.company("acme.example")
    await client.close()
    assert found["email"] == "ana.lopez@acme.example" and verified["status"] == "valid"
    assert found["verification"]["status"] == "valid"  # the finder's own verdict
    assert by_company["domain"] == "zetacorp.example"  # Hunter found the domain itself
    assert org["category"]["industry"] == "Renewables & Environment"
    assert org["metrics"]["employeesRange"] == "51-200"
    first, second = hunter.calls("/v2/email-finder")
    # The key travels in the X-API-KEY header, never in a URL a log could keep.
    assert first.query == {"domain": "acme.example", "first_name": "Ana", "last_name": "Lopez"}
    assert first.headers["x-api-key"] == "hunter-test-key"
    assert second.query == {"company": "Zeta Corp", "full_name": "Zed Zulu"}
    assert second.headers["x-api-key"] == "hunter-test-key"


@pytest.mark.parametrize(
    ("scripted", "kind", "code"),
    [
        (Scripted(202, {"data": {}}), TransientProviderError, "verification_pending"),
        (
            hunter_error(403, "too_many_requests", "You have reached the rate limit"),
            TransientProviderError,
            "rate_limited",
        ),
        (
            hunter_error(429, "too_many_requests", "You have used all your monthly requests"),
            PermanentProviderError,
            "credits_exhausted",
        ),
        (
            hunter_error(451, "claimed_email", "The person behind this email opted out"),
            PermanentProviderError,
            "opted_out",
        ),
        (
            hunter_error(400, "wrong_params", "The email is invalid"),
            PermanentProviderError,
            "provider_rejected_request",
        ),
        (hunter_error(500, "server_error", "oops"), TransientProviderError, "provider_unavailable"),
    ],
)
async def test_hunter_status_codes_mean_what_hunter_documents(hunter, scripted, kind, code) -> None:
    hunter.script("/v2/email-verifier", scripted)
    client = await hunter_client(hunter)
    with pytest.raises(kind) as caught:
        await client.email_verifier("ana@acme.example")
    await client.close()
    assert caught.value.code == code
    if scripted.status != 202:
        assert scripted.body["errors"][0]["id"] in caught.value.message


async def test_hunter_bad_key_is_permanent(hunter) -> None:
    client = HunterClient("wrong", hunter.base)
    with pytest.raises(PermanentProviderError) as caught:
        await client.email_verifier("ana@acme.example")
    await client.close()
    assert (
        caught.value.code == "provider_auth_failed"
        and "authentication_failed" in caught.value.message
    )


def test_circuit_breaker_opens_cools_down_and_probes_once() -> None:
    now = [0.0]
    breaker = CircuitBreaker(
        "p", failure_threshold=3, cooldown=timedelta(seconds=30), clock=lambda: now[0]
    )
    for _ in range(3):
        breaker.before_call()
        breaker.record_failure()
    assert breaker.state == "open"
    with pytest.raises(TransientProviderError) as caught:
        breaker.before_call()
    assert caught.value.code == "circuit_open" and caught.value.retry_after == timedelta(seconds=30)
    now[0] = 31
    breaker.before_call()  # the one probe
    with pytest.raises(TransientProviderError):
        breaker.before_call()  # others wait for its verdict
    breaker.record_failure()
    assert breaker.state == "open"  # the probe failed: a new cool-down
    now[0] = 62
    breaker.before_call()
    breaker.record_success()
    assert breaker.state == "closed" and breaker.failures == 0


async def test_a_window_used_up_by_a_success_is_waited_out_before_the_next_call(
    apollo, monkeypatch
) -> None:
    """Apollo says a window is spent (x-*-requests-left: 0) on a 200: the next call waits
    it out instead of earning a 429; a long wait ends the attempt for the job to retry."""
    from leadflood.integrations.apollo import client as apollo_client

    monkeypatch.setattr(
        apollo_client,
        "_WINDOWS",
        (
            ("x-daily-requests-left", timedelta(hours=1)),
            ("x-hourly-requests-left", timedelta(minutes=10)),
            ("x-minute-requests-left", timedelta(seconds=0.4)),
        ),
    )
    page = fixture("apollo", "people_api_search")
    apollo.script(APOLLO_SEARCH, Scripted(200, page, {"x-minute-requests-left": "0"}))
    client = ApolloClient("apollo-test-key", apollo.base)
    try:
        await client.search_people({"person_titles": ["VP"]})
        started = time.monotonic()
        await client.search_people({"person_titles": ["VP"]}, page=2)
        assert time.monotonic() - started >= 0.35  # waited out the spent minute
        apollo.script(APOLLO_SEARCH, Scripted(200, page, {"x-daily-requests-left": "0"}))
        await client.search_people({"person_titles": ["VP"]}, page=3)
        with pytest.raises(TransientProviderError) as raised:
            await client.search_people({"person_titles": ["VP"]}, page=4)
    finally:
        await client.close()
    assert raised.value.code == "rate_limited"
    assert raised.value.retry_after > timedelta(minutes=59)
    assert len(apollo.calls(APOLLO_SEARCH)) == 3  # the fourth was never sent
