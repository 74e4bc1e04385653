"""The admin API end to end: configure an offer through it and deliver a lead."""

from __future__ import annotations

import orjson
import pytest

from leadflood.core.uow import single_statements
from tests.buyer_server import BuyerServer, Reply
from tests.conftest import drain_jobs
from tests.sql import run

A = "/v1/admin"


@pytest.fixture
def buyer_server():
    with BuyerServer() as server:
        yield server


async def post(client, headers, path: str, body: dict, status: int = 201) -> dict:
    response = await client.post(f"{A}/{path}", json=body, headers=headers)
    assert response.status_code == status, response.text
    return response.json()


async def configure(client, admin, webhook_url: str, **buyer) -> dict:
    market = await post(
        client,
        admin,
        "markets",
        {"slug": "phoenix", "name": "Phoenix", "timezone": "America/Phoenix"},
    )
    vertical = await post(client, admin, "verticals", {"slug": "solar", "name": "Solar"})
    vpolicy = await post(
        client, admin, "validation-policies", {"name": "Strict", "rules": {"phone": "required"}}
    )
    rpolicy = await post(
        client, admin, "routing-policies", {"name": "Priority", "strategy": "priority"}
    )
    offer = await post(
        client,
        admin,
        "offers",
        {
            "slug": "solar-phx",
            "name": "Solar Phoenix",
            "market_id": market["id"],
            "vertical_id": vertical["id"],
            "validation_policy_id": vpolicy["id"],
            "routing_policy_id": rpolicy["id"],
        },
    )
    source = await post(
        client,
        admin,
        "sources",
        {"name": "Site", "offer_id": offer["id"], "source_key": " Site-A "},
    )
    buyer = await post(
        client,
        admin,
        "buyers",
        {
            "name": "SunCo",
            "timezone": "America/Phoenix",
            "webhook_url": webhook_url,
            "webhook_secret": "whsec-super-secret",
            "schedule": {},
            "payment_method": "ach",  # postpaid: no prepaid balance needed to route
            **buyer,
        },
    )
    await post(
        client,
        admin,
        "buyer-offers",
        {"buyer_id": buyer["id"], "offer_id": offer["id"], "price_cents": 2500},
    )
    await post(
        client,
        admin,
        "service-areas",
        {"buyer_id": buyer["id"], "market_id": market["id"], "postal_code": "85001"},
    )
    return {"market": market, "offer": offer, "source": source, "buyer": buyer}


async def post_lead(client, source: dict, api_key: str, **fields) -> str:
    body = {
        "source_id": source["id"],
        "first_name": "Ana",
        "phone": "602-253-0101",
        "postal_code": "85001",
        **fields,
    }
    response = await client.post("/api/leads", json=body, headers={"x-api-key": api_key})
    assert response.status_code == 201, response.text
    return response.json()["lead_id"]


async def test_configure_through_the_api_then_deliver_a_lead(
    client, runtime, admin, buyer_server
) -> None:
    world = await configure(client, admin, buyer_server.url())
    source, buyer = world["source"], world["buyer"]
    # Secrets: the API key is shown once; the hash and the webhook secret never are.
    api_key = source["api_key"]
    assert api_key.startswith("lfsrc_") and source["source_key"] == "site-a"
    shown = (await client.get(f"{A}/sources/{source['id']}", headers=admin)).json()
    assert shown["has_api_key"] is True and "api_key" not in shown and "api_key_hash" not in shown
    assert buyer["webhook_secret_set"] is True and "webhook_secret" not in buyer
    async with single_statements(runtime.db) as conn:
        stored = (await run(conn, "SELECT webhook_secret FROM buyers")).scalar()
    assert stored.startswith("v1:") and "whsec-super-secret" not in stored

    lead_id = await post_lead(client, source, api_key)
    await drain_jobs(runtime)
    assert buyer_server.count() == 1
    story = (await client.get(f"{A}/leads/{lead_id}", headers=admin)).json()
    assert story["lead"]["status"] == "delivered"
    assert story["delivery"]["status"] == "succeeded"
    assert [a["outcome"] for a in story["attempts"]] == ["success"]
    (decision,) = story["routing"]
    assert decision["outcome"] == "routed" and decision["candidates"][0]["buyer_name"] == "SunCo"
    assert story["normalized"]["phone"] == "+16022530101"

    # Every privileged change left an audit row, secrets redacted.
    audit = (await client.get(f"{A}/audit?limit=50", headers=admin)).json()["items"]
    assert {a["entity_type"] for a in audit} >= {
        "market",
        "vertical",
        "validation_policy",
        "routing_policy",
        "offer",
        "source",
        "buyer",
        "buyer_offer",
        "service_area",
    }
    assert all(a["actor"] == "admin@example.com" for a in audit)
    assert "whsec-super-secret" not in orjson.dumps(audit).decode()


async def test_bodies_are_validated_and_unknown_fields_refused(client, admin) -> None:
    cases = [
        ("markets", {"slug": "x", "name": "X", "colour": "red"}, "colour"),
        ("markets", {"slug": "Bad Slug", "name": "X"}, "slug"),
        ("markets", {"slug": "x", "name": "X", "timezone": "Mars/Olympus"}, "timezone"),
        ("buyers", {"name": "B", "schedule": {"mon": [["9am", "5pm"]]}}, "schedule"),
        ("buyers", {"name": "B", "webhook_url": "ftp://x"}, "webhook_url"),
        ("validation-policies", {"name": "P", "rules": {"email": "sometimes"}}, "rules"),
        ("buyer-offers", {"buyer_id": "not-a-uuid", "offer_id": "x"}, "buyer_id"),
    ]
    for path, body, field in cases:
        response = await client.post(f"{A}/{path}", json=body, headers=admin)
        assert response.status_code == 400, (path, response.text)
        error = response.json()["error"]
        assert error["code"] == "invalid_request"
        assert field in {f["loc"][-1] for f in error["details"]["fields"]}, error


async def test_constraint_errors_are_stable_and_lose_nothing(
    client, runtime, admin, buyer_server
) -> None:
    world = await configure(client, admin, buyer_server.url())
    dup = await client.post(
        f"{A}/verticals", json={"slug": "solar", "name": "Again"}, headers=admin
    )
    assert dup.status_code == 409 and dup.json()["error"]["code"] == "already_exists"
    ghost = "00000000-0000-0000-0000-000000000001"
    bad_ref = await client.post(
        f"{A}/buyer-offers",
        json={"buyer_id": ghost, "offer_id": world["offer"]["id"]},
        headers=admin,
    )
    assert bad_ref.status_code == 400 and bad_ref.json()["error"]["code"] == "unknown_reference"
    in_use = await client.delete(f"{A}/offers/{world['offer']['id']}", headers=admin)
    assert in_use.status_code == 409 and in_use.json()["error"]["code"] == "in_use"
    null = await client.patch(
        f"{A}/buyers/{world['buyer']['id']}", json={"name": None}, headers=admin
    )
    assert null.status_code == 400 and null.json()["error"]["code"] == "invalid_value"
    # Nothing above changed what was there.
    offers = (await client.get(f"{A}/offers", headers=admin)).json()
    assert offers["total"] == 1
    assert (await client.get(f"{A}/verticals/{ghost}", headers=admin)).status_code == 404


async def test_patch_changes_only_what_is_sent_and_clears_nullable_fields(
    client, admin, buyer_server
) -> None:
    world = await configure(client, admin, buyer_server.url(), daily_cap=10)
    url = f"{A}/buyers/{world['buyer']['id']}"
    changed = await client.patch(url, json={"daily_cap": None, "status": "paused"}, headers=admin)
    assert changed.status_code == 200
    body = changed.json()
    assert body["daily_cap"] is None and body["status"] == "paused" and body["name"] == "SunCo"
    immutable = await client.patch(
        f"{A}/service-areas/00000000-0000-0000-0000-000000000001",
        json={"buyer_id": world["buyer"]["id"]},
        headers=admin,
    )
    assert immutable.status_code == 400  # buyer_id is not a patchable field


async def test_rotating_a_source_key_retires_the_old_one(client, admin, buyer_server) -> None:
    world = await configure(client, admin, buyer_server.url())
    source, old = world["source"], world["source"]["api_key"]
    rotated = await client.post(f"{A}/sources/{source['id']}/rotate-key", headers=admin)
    assert rotated.status_code == 200
    new = rotated.json()["api_key"]
    assert new != old
    body = {"source_id": source["id"], "phone": "602-253-0102", "postal_code": "85001"}
    assert (
        await client.post("/api/leads", json=body, headers={"x-api-key": old})
    ).status_code == 401
    assert (
        await client.post("/api/leads", json=body, headers={"x-api-key": new})
    ).status_code == 201


async def test_service_area_csv_import(client, runtime, admin, buyer_server) -> None:
    world = await configure(client, admin, buyer_server.url())
    url = f"{A}/buyers/{world['buyer']['id']}/service-areas/import"
    market_id = world["market"]["id"]
    csv = "postal_code,city\n85001,Phoenix\n85002,\n85003,Phoenix\n85002,\n\n"
    response = await client.post(url, json={"market_id": market_id, "csv": csv}, headers=admin)
    assert response.status_code == 200, response.text
    assert response.json() == {"read": 4, "inserted": 3, "skipped": 1, "removed": 0}

    bad = "85004\nnot a zip!!\n85005,Tempe,extra\n"
    refused = await client.post(url, json={"market_id": market_id, "csv": bad}, headers=admin)
    assert refused.status_code == 400
    error = refused.json()["error"]
    assert error["code"] == "invalid_csv" and [e["line"] for e in error["details"]["lines"]] == [
        2,
        3,
    ]
    async with single_statements(runtime.db) as conn:
        count = (await run(conn, "SELECT count(*) FROM buyer_service_areas")).scalar()
    assert count == 4  # the configured one + 3 imported; the bad file added nothing

    replaced = await client.post(
        url, json={"market_id": market_id, "csv": "85009\n", "replace": True}, headers=admin
    )
    assert replaced.json() == {"read": 1, "inserted": 1, "skipped": 0, "removed": 4}


async def test_lead_search_filters_and_cursor_pages(client, runtime, admin, buyer_server) -> None:
    world = await configure(client, admin, buyer_server.url())
    ids = [
        await post_lead(
            client,
            world["source"],
            world["source"]["api_key"],
            phone=f"602-253-01{i:02d}",
            last_name=f"Lopez{i}",
        )
        for i in range(5)
    ]
    seen, cursor = [], None
    while True:
        query = "?limit=2" + (f"&cursor={cursor}" if cursor else "")
        page = (await client.get(f"{A}/leads{query}", headers=admin)).json()
        seen += [item["id"] for item in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == list(reversed(ids))
    by_phone = (await client.get(f"{A}/leads?q=(602) 253-0103", headers=admin)).json()["items"]
    assert [item["id"] for item in by_phone] == [ids[3]]
    received = (await client.get(f"{A}/leads?status=received", headers=admin)).json()["items"]
    assert len(received) == 5
    bad = await client.get(f"{A}/leads?status=lost", headers=admin)
    assert bad.status_code == 400 and bad.json()["error"]["code"] == "invalid_status"


async def test_redeliver_a_failed_lead_and_reroute_an_unrouted_one(
    client, runtime, admin, buyer_server
) -> None:
    world = await configure(client, admin, buyer_server.url())
    buyer_server.script("leads", Reply(status=400, body='{"error": "bad field"}'))
    lead = await post_lead(client, world["source"], world["source"]["api_key"])
    await drain_jobs(runtime)
    story = (await client.get(f"{A}/leads/{lead}", headers=admin)).json()
    assert story["lead"]["status"] == "delivery_failed"

    response = await client.post(f"{A}/leads/{lead}/redeliver", headers=admin)
    assert response.status_code == 200 and response.json()["result"] == "delivery_scheduled"
    await drain_jobs(runtime)
    story = (await client.get(f"{A}/leads/{lead}", headers=admin)).json()
    assert story["lead"]["status"] == "delivered"
    assert [(a["attempt_no"], a["outcome"]) for a in story["attempts"]] == [
        (1, "permanent_error"),
        (2, "success"),
    ]
    failed = (await client.get(f"{A}/deliveries?status=failed", headers=admin)).json()["items"]
    assert failed == []
    (done,) = (await client.get(f"{A}/deliveries?status=succeeded", headers=admin)).json()["items"]
    assert done["lead_id"] == lead and done["attempt_count"] == 2 and done["buyer_name"] == "SunCo"
    history = (await client.get(f"{A}/leads/{lead}/delivery", headers=admin)).json()
    assert history["delivery"]["status"] == "succeeded" and len(history["attempts"]) == 2
    ghost = "00000000-0000-0000-0000-000000000002"
    assert (await client.get(f"{A}/leads/{ghost}/delivery", headers=admin)).status_code == 404
    again = await client.post(f"{A}/leads/{lead}/redeliver", headers=admin)
    assert again.status_code == 409 and again.json()["error"]["code"] == "not_redeliverable"

    # Unrouted: outside the service area until an area is added, then re-routed.
    orphan = await post_lead(
        client,
        world["source"],
        world["source"]["api_key"],
        postal_code="85099",
        phone="602-253-0199",
    )
    await drain_jobs(runtime)
    assert (await client.get(f"{A}/leads/{orphan}", headers=admin)).json()["lead"][
        "status"
    ] == "validated"
    await post(
        client,
        admin,
        "service-areas",
        {
            "buyer_id": world["buyer"]["id"],
            "market_id": world["market"]["id"],
            "postal_code": "85099",
        },
    )
    rerouted = await client.post(f"{A}/leads/{orphan}/reroute", headers=admin)
    assert rerouted.status_code == 200 and rerouted.json()["result"] == "routed"
    assert (await client.post(f"{A}/leads/{orphan}/reroute", headers=admin)).status_code == 409
    actions = (await client.get(f"{A}/audit?entity_type=lead", headers=admin)).json()["items"]
    assert [a["action"] for a in actions] == ["reroute", "redeliver"]


async def test_openapi_documents_the_admin_api(client) -> None:
    spec = (await client.get("/openapi.json")).json()
    assert "/v1/admin/buyers/{item_id}" in spec["paths"]
    assert "/v1/admin/buyers/{buyer_id}/service-areas/import" in spec["paths"]
    buyer = spec["components"]["schemas"]["BuyerIn"]
    assert buyer["additionalProperties"] is False and "webhook_secret" in buyer["properties"]
