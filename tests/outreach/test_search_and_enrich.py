"""ICP search and lead enrichment end to end: API, tracked jobs, retries, dedupe."""

from __future__ import annotations

import asyncio

from pydantic import SecretStr

from leadflood.core.uow import unit_of_work
from leadflood.prospecting.sources import sample_people
from tests.conftest import auth_headers, drain_jobs
from tests.outreach.helpers import ICP, job_state, make_jobs_due, new_icp, scalar, start_search
from tests.provider_fakes import (
    APOLLO_BULK_MATCH,
    APOLLO_MATCH,
    APOLLO_SEARCH,
    Scripted,
    fixture,
    hunter_error,
)
from tests.sql import run


async def test_icp_crud_validates_and_audits(client, runtime, manager) -> None:
    icp_id = await new_icp(client, manager)
    bad = await client.post(
        "/v1/icps",
        json={**ICP, "company_sizes": ["big"], "seniorities": ["VP", "Boss"], "x": 1},
        headers=manager,
    )
    assert bad.status_code == 400
    fields = bad.json()["error"]["details"]["fields"]
    assert {f["loc"][-1] for f in fields} == {"company_sizes", "seniorities", "x"}
    (seniority,) = [f for f in fields if f["loc"][-1] == "seniorities"]
    assert "'Boss' is not one of owner, founder, c_suite" in seniority["message"]
    replaced = await client.put(
        f"/v1/icps/{icp_id}", json={**ICP, "name": "Renamed"}, headers=manager
    )
    assert replaced.status_code == 200 and replaced.json()["name"] == "Renamed"
    listed = (await client.get("/v1/icps", headers=manager)).json()["items"]
    assert [(i["name"], i["lead_count"]) for i in listed] == [("Renamed", 0)]
    assert (await client.delete(f"/v1/icps/{icp_id}", headers=manager)).json() == {"success": True}
    assert (await client.get(f"/v1/icps/{icp_id}", headers=manager)).status_code == 404
    actions = await scalar(
        runtime,
        "SELECT string_agg(action, ',' ORDER BY id) FROM audit_log WHERE entity_type = 'icp'",
    )
    assert actions == "create,update,delete"
    agent = await auth_headers(client, runtime, "agent")
    assert (await client.post("/v1/icps", json=ICP, headers=agent)).status_code == 403


async def test_seniorities_take_apollos_values_in_any_spelling(client, manager) -> None:
    spelled = await client.post(
        "/v1/icps", json={**ICP, "seniorities": ["C-Suite", " VP ", "head"]}, headers=manager
    )
    assert spelled.status_code == 201, spelled.text
    assert spelled.json()["seniorities"] == ["c_suite", "vp", "head"]


async def test_missing_provider_key_answers_503(client, runtime, manager) -> None:
    icp_id = await new_icp(client, manager)
    response = await client.post(
        f"/v1/icps/{icp_id}/search", json={"provider": "apollo"}, headers=manager
    )
    assert response.status_code == 503
    assert response.json()["error"]["code"] == "provider_not_configured"
    sample = await client.post(
        f"/v1/icps/{icp_id}/search", json={"provider": "sample"}, headers=manager
    )
    assert sample.status_code == 400 and sample.json()["error"]["code"] == "provider_not_enabled"
    assert await scalar(runtime, "SELECT count(*) FROM outreach.search_runs") == 0


async def test_apollo_search_runs_as_a_job_and_never_duplicates_leads(
    client, runtime, manager, fakes
) -> None:
    apollo, _ = fakes
    icp_id = await new_icp(client, manager)
    started = await client.post(
        f"/v1/icps/{icp_id}/search",
        json={"provider": "apollo", "pages": 3, "per_page": 2},
        headers=manager,
    )
    assert started.status_code == 202
    run_id, job_id = started.json()["run_id"], started.json()["job_id"]
    queued = (await client.get(f"/v1/icps/{icp_id}/search-runs/{run_id}", headers=manager)).json()
    assert queued["status"] == "queued"
    assert (await client.get(f"/v1/jobs/{job_id}", headers=manager)).json()["status"] == "queued"

    await drain_jobs(runtime)
    run = (await client.get(f"/v1/icps/{icp_id}/search-runs/{run_id}", headers=manager)).json()
    assert run["status"] == "completed"
    assert (run["results_count"], run["leads_created"], run["pages_fetched"]) == (5, 5, 3)
    job = (await client.get(f"/v1/jobs/{job_id}", headers=manager)).json()
    assert job["status"] == "completed" and job["attempts"] == 1
    assert job["result"]["leads_created"] == 5 and job["links"]["search_run_id"] == run_id
    sent = apollo.calls(APOLLO_SEARCH)[0].body
    assert sent["person_titles"] == ["VP of Sales"] and sent["person_seniorities"] == ["vp"]
    assert sent["organization_num_employees_ranges"] == ["51,200"]

    # The same search again today is the same run; a different one adds no duplicate lead.
    again = await client.post(
        f"/v1/icps/{icp_id}/search",
        json={"provider": "apollo", "pages": 3, "per_page": 2},
        headers=manager,
    )
    assert again.status_code == 202 and again.json() == {
        "run_id": run_id,
        "job_id": job_id,
        "deduplicated": True,
        # The camelCase names published before decision 0015, kept as deprecated aliases.
        "runId": run_id,
        "jobId": job_id,
    }
    other = await client.post(
        f"/v1/icps/{icp_id}/search",
        json={"provider": "apollo", "pages": 1, "per_page": 10},
        headers=manager,
    )
    await drain_jobs(runtime)
    second = (
        await client.get(f"/v1/icps/{icp_id}/search-runs/{other.json()['run_id']}", headers=manager)
    ).json()
    assert (second["results_count"], second["leads_created"]) == (5, 0)
    assert await scalar(runtime, "SELECT count(*) FROM outreach.leads") == 5


async def test_apollo_search_brings_no_emails_and_enriches_only_the_top_n(
    client, runtime, manager, fakes
) -> None:
    """The documented search has no contact data; People Enrichment spends a credit per
    lead, so it runs for the top-ranked N leads the search asked for, and no others."""
    apollo, _ = fakes
    icp_id = await new_icp(client, manager)
    started = await client.post(
        f"/v1/icps/{icp_id}/search",
        json={"provider": "apollo", "per_page": 10, "enrich_top": 2},
        headers=manager,
    )
    assert started.status_code == 202, started.text
    await drain_jobs(runtime)
    job = await job_state(client, manager, started.json()["job_id"])
    assert job["status"] == "completed" and job["result"]["enrichments_started"] == 2
    # Both in one Bulk People Enrichment call, no single-person calls.
    (bulk,) = apollo.calls(APOLLO_BULK_MATCH)
    assert bulk.body == {"details": [{"id": "apollo-1"}, {"id": "apollo-2"}]}
    assert bulk.query["reveal_personal_emails"] == "false"
    assert apollo.calls(APOLLO_MATCH) == []
    leads = {
        lead["source_ref"]: lead
        for lead in (await client.get(f"/v1/leads?icp_id={icp_id}", headers=manager)).json()[
            "items"
        ]
    }
    assert len(leads) == 5
    top = leads["apollo-1"]
    assert (top["email"], top["last_name"], top["email_status"]) == (
        "first1.last1@acme1.example",
        "Last1",
        "valid",
    )
    assert top["company_domain"] == "acme1.example" and top["status"] == "enriched"
    rest = [leads[f"apollo-{n}"] for n in (3, 4, 5)]
    assert all(lead["email"] is None and lead["last_name"] is None for lead in rest)
    # The same search again today is the same run: no second round of credits.
    again = await client.post(
        f"/v1/icps/{icp_id}/search",
        json={"provider": "apollo", "per_page": 10, "enrich_top": 2},
        headers=manager,
    )
    assert again.json()["deduplicated"] is True
    await drain_jobs(runtime)
    assert len(apollo.calls(APOLLO_BULK_MATCH)) == 1


async def test_enrich_top_is_bounded_and_checked_before_the_search(
    client, runtime, manager, fakes
) -> None:
    icp_id = await new_icp(client, manager)
    too_many = await client.post(
        f"/v1/icps/{icp_id}/search",
        json={"provider": "apollo", "enrich_top": 101},
        headers=manager,
    )
    assert too_many.status_code == 400
    runtime.settings.sample_providers = False
    sample = await client.post(
        f"/v1/icps/{icp_id}/search", json={"provider": "sample", "enrich_top": 1}, headers=manager
    )
    assert sample.status_code == 400 and sample.json()["error"]["code"] == "provider_not_enabled"
    assert await scalar(runtime, "SELECT count(*) FROM outreach.search_runs") == 0


async def test_rate_limited_search_retries_then_completes(client, runtime, manager, fakes) -> None:
    apollo, _ = fakes
    apollo.script(APOLLO_SEARCH, Scripted(429, {"error": "slow down"}, {"Retry-After": "1"}))
    icp_id = await new_icp(client, manager)
    started = await start_search(client, manager, icp_id)
    await drain_jobs(runtime)
    job = await job_state(client, manager, started["job_id"])
    assert job["status"] == "queued" and job["attempts"] == 1
    assert "rate_limited" in job["error"] and job["next_attempt_at"] is not None
    await make_jobs_due(runtime)
    await drain_jobs(runtime)
    job = await job_state(client, manager, started["job_id"])
    assert job["status"] == "completed" and job["attempts"] == 2
    assert await scalar(runtime, "SELECT count(*) FROM outreach.leads") == 5


async def test_rejected_key_fails_the_run_without_retrying(client, runtime, manager, fakes) -> None:
    runtime.settings.apollo_api_key = SecretStr("revoked-key")
    icp_id = await new_icp(client, manager)
    started = await start_search(client, manager, icp_id)
    await drain_jobs(runtime)
    job = await job_state(client, manager, started["job_id"])
    assert job["status"] == "failed" and job["attempts"] == 1
    assert "Invalid access credentials" in job["error"]
    run = (
        await client.get(f"/v1/icps/{icp_id}/search-runs/{started['run_id']}", headers=manager)
    ).json()
    assert run["status"] == "failed" and "provider_auth_failed" in run["error"]
    # A failed run does not block today's retry once the key is fixed.
    runtime.settings.apollo_api_key = SecretStr("apollo-test-key")
    retry = (
        await client.post(f"/v1/icps/{icp_id}/search", json={"provider": "apollo"}, headers=manager)
    ).json()
    assert retry["deduplicated"] is False and retry["run_id"] != started["run_id"]


async def test_sample_provider_search_is_deterministic(client, runtime, manager, fakes) -> None:
    icp_id = await new_icp(
        client, manager, titles=["VP"], seniorities=[], locations=[], company_sizes=[]
    )
    started = (
        await client.post(
            f"/v1/icps/{icp_id}/search",
            json={"provider": "sample", "per_page": 100},
            headers=manager,
        )
    ).json()
    await drain_jobs(runtime)
    run = (
        await client.get(f"/v1/icps/{icp_id}/search-runs/{started['run_id']}", headers=manager)
    ).json()
    expected = sum("vp" in p["title"].lower() for p in sample_people())
    assert run["status"] == "completed"
    assert run["results_count"] == run["total_available"] == expected
    assert 0 < expected < len(sample_people())
    with_email = await scalar(
        runtime, "SELECT count(*) FROM outreach.leads WHERE email IS NOT NULL"
    )
    assert 0 < with_email < expected  # like Apollo, part of the prospects come without an email


async def test_leads_list_filters_sorts_and_pages(client, runtime, manager, fakes) -> None:
    icp_id = await new_icp(client, manager)
    await client.post(
        f"/v1/icps/{icp_id}/search", json={"provider": "apollo", "per_page": 10}, headers=manager
    )
    await drain_jobs(runtime)
    manual = await client.post(
        "/v1/leads",
        json={"email": "Zed@Zeta.example", "first_name": "Zed", "company": "Zeta"},
        headers=manager,
    )
    assert manual.status_code == 201 and manual.json()["normalized_email"] == "zed@zeta.example"
    dup = await client.post("/v1/leads", json={"email": "zed@zeta.example"}, headers=manager)
    assert dup.status_code == 409 and dup.json()["error"]["code"] == "lead_exists"

    names, cursor = [], None
    while True:
        url = "/v1/leads?sort=company&limit=2" + (f"&cursor={cursor}" if cursor else "")
        page = (await client.get(url, headers=manager)).json()
        names += [item["company"] for item in page["items"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert names == sorted(names) and len(names) == 6
    by_icp = (await client.get(f"/v1/leads?icp_id={icp_id}", headers=manager)).json()["items"]
    assert len(by_icp) == 5
    found = (await client.get("/v1/leads?q=zeta", headers=manager)).json()["items"]
    assert [lead["first_name"] for lead in found] == ["Zed"]
    assert (await client.get("/v1/leads?sort=shoe_size", headers=manager)).status_code == 400


async def test_idempotency_key_replays_the_first_result(client, runtime, manager) -> None:
    headers = {**manager, "Idempotency-Key": "icp-1"}
    first, second = await asyncio.gather(
        client.post("/v1/icps", json=ICP, headers=headers),
        client.post("/v1/icps", json=ICP, headers=headers),
    )
    assert first.status_code == second.status_code == 201
    assert first.json()["id"] == second.json()["id"]
    assert await scalar(runtime, "SELECT count(*) FROM outreach.icps") == 1
    reused = await client.post("/v1/icps", json={**ICP, "name": "Other"}, headers=headers)
    assert reused.status_code == 409 and reused.json()["error"]["code"] == "idempotency_key_reused"


async def make_lead(client, headers, **fields) -> str:
    body = {"email": "placeholder@x.example", **fields}
    response = await client.post("/v1/leads", json=body, headers=headers)
    assert response.status_code == 201, response.text
    return response.json()["id"]


async def test_enrichment_fills_empty_fields_and_records_changes(
    client, runtime, manager, fakes
) -> None:
    icp_id = await new_icp(client, manager)
    await client.post(
        f"/v1/icps/{icp_id}/search", json={"provider": "sample", "pages": 1}, headers=manager
    )
    lead = await make_lead(
        client, manager, email="ana@acme.example", title="Founder", company_domain="acme.example"
    )
    started = await client.post(f"/v1/leads/{lead}/enrich", headers=manager)
    assert started.status_code == 202
    dup = await client.post(f"/v1/leads/{lead}/enrich", headers=manager)
    job_id = started.json()["job_id"]
    assert dup.json() == {
        "job_id": job_id,
        "enrichment_run_id": None,
        "deduplicated": True,
        "jobId": job_id,
        "enrichmentRunId": None,
    }
    await drain_jobs(runtime)
    detail = (await client.get(f"/v1/leads/{lead}", headers=manager)).json()
    assert detail["status"] == "enriched" and detail["email_status"] == "valid"
    assert detail["title"] == "Founder"  # kept: enrichment fills only what is empty
    assert detail["industry"] == "Renewables & Environment" and detail["company_size"] == "51-200"
    (run,) = detail["enrichment_runs"]
    assert run["changes"]["email_status"] == {"from": "unknown", "to": "valid"}
    assert "title" not in run["changes"]

    again = await client.post(
        f"/v1/leads/{lead}/enrich", json={"overwrite": True, "provider": "sample"}, headers=manager
    )
    assert again.json()["deduplicated"] is False
    await drain_jobs(runtime)
    runs = (await client.get(f"/v1/leads/{lead}", headers=manager)).json()["enrichment_runs"]
    assert len(runs) == 2 and runs[0]["status"] == "completed"


async def test_enrichment_finds_a_missing_email_and_retries_pending_verification(
    client, runtime, manager, fakes
) -> None:
    _, hunter = fakes
    async with unit_of_work(runtime.db) as conn:
        lead = (
            await run(
                conn,
                "INSERT INTO outreach.leads (first_name, last_name, company_domain, source, "
                "source_ref) VALUES ('Ana', 'Lopez', 'acme.example', 'apollo', 'p1') "
                "RETURNING id",
            )
        ).scalar()
    # The finder found the address but did not verify it: the verifier runs, and first
    # answers 202 (still verifying).
    unverified = fixture("hunter", "email_finder")
    unverified["data"].update(
        email="ana.lopez@acme.example", verification={"date": None, "status": None}
    )
    hunter.script("/v2/email-finder", Scripted(200, unverified), Scripted(200, unverified))
    hunter.script("/v2/email-verifier", Scripted(202, {"data": {}}))
    job_id = (await client.post(f"/v1/leads/{lead}/enrich", headers=manager)).json()["job_id"]
    await drain_jobs(runtime)
    job = (await client.get(f"/v1/jobs/{job_id}", headers=manager)).json()
    assert job["status"] == "queued" and "verification_pending" in job["error"]
    await make_jobs_due(runtime)
    await drain_jobs(runtime)
    job = (await client.get(f"/v1/jobs/{job_id}", headers=manager)).json()
    assert job["status"] == "completed" and job["attempts"] == 2
    detail = (await client.get(f"/v1/leads/{lead}", headers=manager)).json()
    assert (
        detail["normalized_email"] == "ana.lopez@acme.example" and detail["email_status"] == "valid"
    )
    assert detail["title"] == "Head of Growth"


async def test_hunter_spends_only_the_calls_a_lead_needs(client, runtime, manager, fakes) -> None:
    """The finder's own verification stands (no second, billed verifier call); a company
    name stands in for a missing domain; a first name alone is not searched at all."""
    _, hunter = fakes
    async with unit_of_work(runtime.db) as conn:
        ids = {}
        for ref, first, last, company, domain in (
            ("a", "Ana", "Lopez", None, "acme.example"),
            ("b", "Bo", "Berg", "Zeta Corp", None),
            ("c", "Cy", None, "Acme", "acme.example"),
        ):
            ids[ref] = (
                await run(
                    conn,
                    "INSERT INTO outreach.leads (first_name, last_name, company, company_domain, "
                    "source, source_ref) VALUES (:f, :l, :c, :d, 'import', :r) RETURNING id",
                    {"f": first, "l": last, "c": company, "d": domain, "r": ref},
                )
            ).scalar()
    for lead_id in ids.values():
        await client.post(f"/v1/leads/{lead_id}/enrich", headers=manager)
    await drain_jobs(runtime)
    detail = {
        ref: (await client.get(f"/v1/leads/{lead_id}", headers=manager)).json()
        for ref, lead_id in ids.items()
    }
    assert (detail["a"]["email"], detail["a"]["email_status"]) == (
        "ana.lopez@acme.example",
        "valid",
    )
    assert detail["a"]["industry"] == "Renewables & Environment"
    assert detail["a"]["company_size"] == "51-200"
    assert detail["b"]["email"] == "bo.berg@zetacorp.example"
    assert detail["b"]["company_domain"] == "zetacorp.example"
    assert detail["c"]["email"] is None
    assert detail["c"]["enrichment_runs"][0]["outcome"] == "not_found"
    assert hunter.calls("/v2/email-verifier") == []
    finder = {
        (c.query.get("domain", "-"), c.query.get("company", "-"))
        for c in hunter.calls("/v2/email-finder")
    }
    assert finder == {("-", "Zeta Corp"), ("acme.example", "-")}


async def test_exhausted_credits_fail_at_once_and_opt_outs_drop_the_data(
    client, runtime, manager, fakes
) -> None:
    _, hunter = fakes
    spent = await make_lead(client, manager, email="one@acme.example")
    hunter.script(
        "/v2/email-verifier", hunter_error(429, "too_many_requests", "monthly requests used")
    )
    job_id = (await client.post(f"/v1/leads/{spent}/enrich", headers=manager)).json()["job_id"]
    await drain_jobs(runtime)
    job = (await client.get(f"/v1/jobs/{job_id}", headers=manager)).json()
    assert (
        job["status"] == "failed" and job["attempts"] == 1 and "credits_exhausted" in job["error"]
    )
    assert (await client.get(f"/v1/leads/{spent}", headers=manager)).json()["status"] == "failed"

    # The account's quota is on record; clearing it (a bigger plan) lets calls through.
    assert (await client.delete("/v1/providers/quotas/hunter", headers=manager)).status_code == 200
    gone = await make_lead(client, manager, email="two@acme.example")
    hunter.script("/v2/email-verifier", hunter_error(451, "claimed_email", "opted out"))
    job_id = (await client.post(f"/v1/leads/{gone}/enrich", headers=manager)).json()["job_id"]
    await drain_jobs(runtime)
    assert (await client.get(f"/v1/jobs/{job_id}", headers=manager)).json()["result"][
        "outcome"
    ] == "opted_out"
    detail = (await client.get(f"/v1/leads/{gone}", headers=manager)).json()
    assert detail["do_not_contact"] is True and detail["enrichment_data"] == {}


async def test_enrich_without_hunter_key_is_503(client, runtime, manager) -> None:
    lead = await make_lead(client, manager, email="x@acme.example")
    response = await client.post(f"/v1/leads/{lead}/enrich", headers=manager)
    assert (
        response.status_code == 503
        and response.json()["error"]["code"] == "provider_not_configured"
    )


async def test_a_lead_created_with_enrich_starts_its_enrichment(
    client, runtime, manager, fakes
) -> None:
    body = {"email": "ana@acme.example", "company_domain": "acme.example", "enrich": True}
    created = await client.post("/v1/leads", json=body, headers=manager)
    assert created.status_code == 201, created.text
    job_id = created.json()["enrichment_job_id"]
    assert job_id is not None
    await drain_jobs(runtime)
    assert (await client.get(f"/v1/jobs/{job_id}", headers=manager)).json()["status"] == "completed"
    detail = (await client.get(f"/v1/leads/{created.json()['id']}", headers=manager)).json()
    assert detail["status"] == "enriched" and detail["email_status"] == "valid"
    plain = await client.post("/v1/leads", json={"email": "bo@acme.example"}, headers=manager)
    assert plain.status_code == 201 and plain.json()["enrichment_job_id"] is None


async def test_enrich_on_create_without_a_provider_creates_nothing(
    client, runtime, manager
) -> None:
    body = {"email": "x@acme.example", "enrich": True}
    response = await client.post("/v1/leads", json=body, headers=manager)
    assert response.status_code == 503
    assert response.json()["error"]["code"] == "provider_not_configured"
    assert await scalar(runtime, "SELECT count(*) FROM outreach.leads") == 0


async def test_industries_are_a_filter_of_their_own_not_keywords(
    client, runtime, manager, fakes
) -> None:
    apollo, _ = fakes
    icp = await client.post(
        "/v1/icps",
        json={
            "name": "Solar",
            "titles": ["Owner"],
            "industries": ["Solar", "Roofing"],
            "keywords": "installer",
        },
        headers=manager,
    )
    assert icp.status_code == 201, icp.text
    await client.post(
        f"/v1/icps/{icp.json()['id']}/search", json={"provider": "apollo"}, headers=manager
    )
    await drain_jobs(runtime)
    sent = apollo.calls(APOLLO_SEARCH)[0].body
    # Any of the industries matches; the keywords stay the keywords.
    assert sorted(sent["q_organization_keyword_tags"]) == ["Roofing", "Solar"]
    assert sent["q_keywords"] == "installer"


async def test_a_used_up_quota_stops_the_batch_with_one_account_level_message(
    client, runtime, manager, fakes
) -> None:
    _, hunter = fakes
    leads = [await make_lead(client, manager, email=f"q{n}@acme.example") for n in range(4)]
    hunter.script(
        "/v2/email-verifier", hunter_error(429, "too_many_requests", "monthly requests used")
    )
    # Four queued at once: the first to call Hunter learns the quota is gone; the others
    # end without calling it.
    jobs = [
        (await client.post(f"/v1/leads/{lead}/enrich", headers=manager)).json()["job_id"]
        for lead in leads
    ]
    # One worker slot: the jobs run one after another. (With parallel slots, attempts
    # already in flight when the first answer comes back make their call too.)
    await drain_jobs(runtime, concurrency=1)
    verifier_calls = len(hunter.calls("/v2/email-verifier"))
    assert verifier_calls == 1
    errors = [(await client.get(f"/v1/jobs/{j}", headers=manager)).json()["error"] for j in jobs]
    assert "credits_exhausted" in errors[0]
    assert all("quota_exhausted" in e for e in errors[1:])
    (quota,) = (await client.get("/v1/providers/quotas", headers=manager)).json()["items"]
    assert quota["provider"] == "hunter" and "monthly requests used" in quota["message"]
    # A new request is refused up front, with the account-level message.
    more = await make_lead(client, manager, email="q9@acme.example")
    refused = await client.post(f"/v1/leads/{more}/enrich", headers=manager)
    assert refused.status_code == 409
    assert refused.json()["error"]["code"] == "provider_quota_exhausted"
    # The operator raised the plan: Hunter is called again.
    cleared = await client.delete("/v1/providers/quotas/hunter", headers=manager)
    assert cleared.status_code == 200
    assert (await client.post(f"/v1/leads/{more}/enrich", headers=manager)).status_code == 202
    await drain_jobs(runtime)
    assert len(hunter.calls("/v2/email-verifier")) > verifier_calls


async def test_a_search_completes_without_enrichment_when_the_quota_is_used_up(
    client, runtime, manager, fakes
) -> None:
    async with unit_of_work(runtime.db) as tx:
        await tx.execute(
            "INSERT INTO outreach.provider_quotas (provider, exhausted_at, retry_at, message) "
            "VALUES ('apollo', now(), now() + interval '1 hour', 'insufficient credits')"
        )
    icp_id = await new_icp(client, manager)
    started = await start_search(client, manager, icp_id, per_page=10, enrich_top=2)
    await drain_jobs(runtime)
    job = (await client.get(f"/v1/jobs/{started['job_id']}", headers=manager)).json()
    assert job["status"] == "completed" and job["result"]["enrichments_started"] == 0
    assert "insufficient credits" in job["result"]["enrichment_skipped"]


async def test_enrich_top_goes_ten_leads_per_bulk_call(client, runtime, manager) -> None:
    from tests.provider_fakes import FakeApollo

    with FakeApollo(total=23) as apollo:
        s = runtime.settings
        s.apollo_api_key, s.apollo_base_url = SecretStr("apollo-test-key"), apollo.base
        icp_id = await new_icp(client, manager)
        started = await start_search(client, manager, icp_id, per_page=30, enrich_top=23)
        await drain_jobs(runtime)
        job = await job_state(client, manager, started["job_id"])
        assert job["result"]["enrichments_started"] == 23
        sizes = sorted(len(c.body["details"]) for c in apollo.calls(APOLLO_BULK_MATCH))
        assert sizes == [3, 10, 10]  # 23 leads, 3 calls, not 23
        enriched = await scalar(
            runtime, "SELECT count(*) FROM outreach.leads WHERE status = 'enriched'"
        )
        assert enriched == 23
        # Each lead's own history shows its run, linked to the batch's job.
        runs = await scalar(
            runtime,
            "SELECT count(DISTINCT job_id) FROM outreach.enrichment_runs WHERE status = 'completed'",
        )
        assert runs == 3
