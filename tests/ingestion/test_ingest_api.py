"""POST /api/leads and GET /api/leads/{id} against a real PostgreSQL."""

from __future__ import annotations

import uuid

import httpx
import pytest

from leadflood.catalog import service as catalog
from leadflood.core.uow import single_statements, unit_of_work
from tests.factories import make_world
from tests.sql import run

LEAD = {
    "first_name": "Ana",
    "last_name": "Lopez",
    "email": "  Ana.Lopez@Example.COM ",
    "phone": "(602) 253-1234",
    "postal_code": "85001",
    "consent": True,
}


async def count(runtime, sql: str, **params) -> int:
    async with single_statements(runtime.db) as conn:
        return (await run(conn, sql, params)).scalar_one()


@pytest.fixture
async def world(runtime):
    async with unit_of_work(runtime.db) as conn:
        return await make_world(conn)


async def test_create_then_replay_returns_the_same_lead(client, runtime, world) -> None:
    body = {**LEAD, "source_id": str(world.source_id), "idempotency_key": "order-1"}
    first = await client.post("/api/leads", json=body)
    assert first.status_code == 201, first.text
    data = first.json()
    assert set(data) == {
        "lead_id",
        "source_id",
        "offer_id",
        "market_id",
        "vertical_id",
        "idempotency_key",
        "idempotency_key_derived",
        "status",
    }
    assert data["status"] == "received"
    assert data["offer_id"] == str(world.offer_id)
    assert data["market_id"] == str(world.market_id)
    assert data["vertical_id"] == str(world.vertical_id)
    assert data["idempotency_key"] == "order-1" and data["idempotency_key_derived"] is False
    replay = await client.post("/api/leads", json=body)
    assert replay.status_code == 200
    assert replay.json() == data
    assert await count(runtime, "SELECT count(*) FROM leads") == 1
    jobs = await count(runtime, "SELECT count(*) FROM pgqueuer WHERE entrypoint='validate_lead'")
    assert jobs == 1


async def test_normalized_fields_and_unknown_fields_are_stored(client, runtime, world) -> None:
    body = {
        **LEAD,
        "source_id": str(world.source_id),
        "utm_source": "fb",
        "answers": {"roof_age": 12},
    }
    response = await client.post("/api/leads", json=body, headers={"user-agent": "form/1.0"})
    assert response.status_code == 201
    async with single_statements(runtime.db) as conn:
        row = (await run(conn, "SELECT * FROM leads")).mappings().one()
    assert row["email"] == "Ana.Lopez@Example.COM"
    assert row["normalized_email"] == "ana.lopez@example.com"
    assert row["phone"] == "(602) 253-1234"
    assert row["normalized_phone"] == "+16022531234"
    assert row["raw_payload"]["utm_source"] == "fb"
    assert row["raw_payload"]["answers"] == {"roof_age": 12}
    assert row["raw_payload"]["email"] == "  Ana.Lopez@Example.COM "
    assert row["user_agent"] == "form/1.0"
    assert row["status"] == "received"


async def test_short_phone_normalizes_to_null(client, runtime, world) -> None:
    body = {**LEAD, "phone": "555-12", "source_id": str(world.source_id)}
    assert (await client.post("/api/leads", json=body)).status_code == 201
    assert await count(runtime, "SELECT count(*) FROM leads WHERE normalized_phone IS NULL") == 1


@pytest.mark.parametrize("variant", ["SOURCE-{n}", "  source-{n}\t", "Source-{n} "])
async def test_source_key_canonicalization(client, world, variant) -> None:
    key = (
        variant.replace("source-{n}", world.source_key)
        .replace("SOURCE-{n}", world.source_key.upper())
        .replace("Source-{n}", world.source_key.title())
    )
    response = await client.post("/api/leads", json={**LEAD, "source_key": key})
    assert response.status_code == 201, response.text
    assert response.json()["source_id"] == str(world.source_id)


async def test_source_id_wins_over_source_key(client, runtime, world) -> None:
    async with unit_of_work(runtime.db) as conn:
        other = await make_world(conn)
    body = {**LEAD, "source_id": str(world.source_id), "source_key": other.source_key}
    assert (await client.post("/api/leads", json=body)).json()["source_id"] == str(world.source_id)


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"source_id": str(uuid.uuid4())}, "invalid_source"),
        ({"source_id": "not-a-uuid"}, "invalid_source"),
        ({"source_id": 42}, "invalid_source"),
        ({"source_key": "nope"}, "invalid_source_key"),
        ({"source_key": "   "}, "invalid_source_key"),
        ({}, "unmapped_source"),
    ],
)
async def test_classification_errors(client, runtime, world, body, code) -> None:
    response = await client.post("/api/leads", json={**LEAD, **body})
    assert response.status_code == 400
    assert response.json()["error"]["code"] == code
    assert await count(runtime, "SELECT count(*) FROM leads") == 0


async def test_inactive_source_is_invalid(client, runtime, world) -> None:
    async with unit_of_work(runtime.db) as conn:
        await run(conn, "UPDATE sources SET active = false")
    by_id = await client.post("/api/leads", json={**LEAD, "source_id": str(world.source_id)})
    by_key = await client.post("/api/leads", json={**LEAD, "source_key": world.source_key})
    assert by_id.json()["error"]["code"] == "invalid_source"
    assert by_key.json()["error"]["code"] == "invalid_source_key"


async def _mapped_sources(runtime, world, *mappings: tuple[str, str]) -> list[uuid.UUID]:
    ids = []
    async with unit_of_work(runtime.db) as conn:
        for i, (host, prefix) in enumerate(mappings):
            sid, _ = await catalog.create_source(
                conn,
                name=f"mapped {i}",
                offer_id=world.offer_id,
                source_key=f"mapped-{uuid.uuid4().hex[:8]}",
                hostname=host,
                path_prefix=prefix,
            )
            ids.append(sid)
    return ids


@pytest.mark.parametrize(
    ("host", "path"),
    [
        ("leads.example.com", "/api/leads/acme"),
        ("LEADS.Example.COM:8443", "/api/leads/acme"),
        ("leads.example.com.", "/api/leads/acme/"),
        ("leads.example.com", "//api//leads///acme//"),
        ("leads.example.com", "/API/Leads/ACME/solar"),
    ],
)
async def test_http_mapping_canonicalizes_host_and_path(client, runtime, world, host, path) -> None:
    (acme,) = await _mapped_sources(runtime, world, ("leads.example.com", "/api/leads/acme"))
    url = httpx.URL(scheme="http", host="testserver", path=path)
    response = await client.post(url, json=LEAD, headers={"host": host})
    assert response.status_code == 201, response.text
    assert response.json()["source_id"] == str(acme)


async def test_http_mapping_longest_prefix_on_segment_boundary(client, runtime, world) -> None:
    short, long_ = await _mapped_sources(
        runtime,
        world,
        ("leads.example.com", "/api/leads"),
        ("leads.example.com", "/api/leads/acme"),
    )
    headers = {"host": "leads.example.com"}
    deep = await client.post("/api/leads/acme/solar", json=LEAD, headers=headers)
    assert deep.json()["source_id"] == str(long_)
    # "/api/leads/acmeco" is not under "/api/leads/acme": falls back to the shorter prefix.
    sibling = await client.post(
        "/api/leads/acmeco", json={**LEAD, "phone": "6022531235"}, headers=headers
    )
    assert sibling.json()["source_id"] == str(short)
    other_host = await client.post("/api/leads/acme", json=LEAD, headers={"host": "x.test"})
    assert other_host.json()["error"]["code"] == "unmapped_source"


async def test_http_mapping_tie_is_ambiguous(client, runtime, world) -> None:
    await _mapped_sources(
        runtime,
        world,
        ("leads.example.com", "/api/leads/acme"),
        ("leads.example.com", "/api/leads/acme/"),
    )
    response = await client.post(
        "/api/leads/acme", json=LEAD, headers={"host": "leads.example.com"}
    )
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "ambiguous_source_mapping"
    assert len(response.json()["error"]["details"]["source_ids"]) == 2
    assert await count(runtime, "SELECT count(*) FROM leads") == 0


async def test_source_api_key_is_required_when_configured(client, runtime) -> None:
    async with unit_of_work(runtime.db) as conn:
        world = await make_world(conn, source_api_key=True)
    key = world.extra["api_key"]
    body = {**LEAD, "source_id": str(world.source_id)}
    missing = await client.post("/api/leads", json=body)
    wrong = await client.post("/api/leads", json=body, headers={"authorization": "Bearer nope"})
    assert missing.status_code == wrong.status_code == 401
    assert missing.json()["error"]["code"] == "unauthorized_source"
    assert await count(runtime, "SELECT count(*) FROM leads") == 0
    assert await count(runtime, "SELECT count(*) FROM pgqueuer") == 0
    bearer = await client.post("/api/leads", json=body, headers={"authorization": f"Bearer {key}"})
    assert bearer.status_code == 201
    x_api = await client.post("/api/leads", json=body, headers={"x-api-key": key})
    assert x_api.status_code == 200 and x_api.json()["lead_id"] == bearer.json()["lead_id"]
    lead_url = f"/api/leads/{bearer.json()['lead_id']}"
    assert (await client.get(lead_url)).status_code == 401
    got = await client.get(lead_url, headers={"x-api-key": key})
    assert got.status_code == 200


@pytest.mark.parametrize(
    "key", ["", "   ", "a" * 129, "has space", "ünïcode", "semi;colon", "slash/no"]
)
async def test_invalid_client_idempotency_keys(client, runtime, world, key) -> None:
    body = {**LEAD, "source_id": str(world.source_id), "idempotency_key": key}
    response = await client.post("/api/leads", json=body)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_idempotency_key_format"
    assert await count(runtime, "SELECT count(*) FROM leads") == 0


async def test_idempotency_key_header_alias_strip_and_case(client, world) -> None:
    body = {**LEAD, "source_id": str(world.source_id)}
    a = await client.post("/api/leads", json=body, headers={"Idempotency-Key": " Key.A:1 "})
    b = await client.post("/api/leads", json={**body, "idempotency_key": "Key.A:1"})
    c = await client.post("/api/leads", json={**body, "idempotency_key": "key.a:1"})
    assert a.status_code == 201 and a.json()["idempotency_key"] == "Key.A:1"
    assert b.status_code == 200 and b.json()["lead_id"] == a.json()["lead_id"]
    assert c.status_code == 201 and c.json()["lead_id"] != a.json()["lead_id"]
    both = await client.post(
        "/api/leads", json={**body, "idempotency_key": "k1"}, headers={"Idempotency-Key": "k1"}
    )
    assert both.status_code == 201
    mismatch = await client.post(
        "/api/leads", json={**body, "idempotency_key": "k1"}, headers={"Idempotency-Key": "k2"}
    )
    assert mismatch.status_code == 400
    assert mismatch.json()["error"]["code"] == "idempotency_key_mismatch"


async def test_derived_key_dedupes_equivalent_posts(client, runtime, world) -> None:
    body = {**LEAD, "source_id": str(world.source_id)}
    first = await client.post("/api/leads", json=body)
    assert first.status_code == 201
    assert first.json()["idempotency_key_derived"] is True
    assert first.json()["idempotency_key"].startswith("d1:")
    same = await client.post(
        "/api/leads",
        json={
            **body,
            "first_name": "  ANA ",
            "email": "ana.lopez@example.com",
            "phone": "+1 602-253-1234",
            "utm": "other",
        },
    )
    assert same.status_code == 200 and same.json()["lead_id"] == first.json()["lead_id"]
    different = await client.post("/api/leads", json={**body, "postal_code": "85004"})
    assert different.status_code == 201
    assert await count(runtime, "SELECT count(*) FROM leads") == 2


async def test_derivation_fails_without_email_and_phone(client, runtime, world) -> None:
    body = {"first_name": "Ana", "source_id": str(world.source_id), "phone": "12"}
    response = await client.post("/api/leads", json=body)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "idempotency_derivation_failed"
    assert await count(runtime, "SELECT count(*) FROM leads") == 0


@pytest.mark.parametrize(
    ("content", "code"),
    [
        (b"{not json", "invalid_json"),
        (b"", "invalid_json"),
        (b"[1, 2]", "invalid_body"),
        (b'"text"', "invalid_body"),
        (b'{"first_name": {"a": 1}}', "invalid_field_type"),
        (b'{"first_name": true}', "invalid_field_type"),
        (b'{"consent": "yes"}', "invalid_field_type"),
        (b'{"email": ["a@b.co"]}', "invalid_field_type"),
        (b'{"first_name": "a\\u0000b"}', "nul_character"),
    ],
)
async def test_malformed_bodies_get_stable_codes(client, runtime, world, content, code) -> None:
    response = await client.post(
        "/api/leads", content=content, headers={"content-type": "application/json"}
    )
    assert response.status_code == 400, response.text
    assert response.json()["error"]["code"] == code
    assert await count(runtime, "SELECT count(*) FROM leads") == 0


async def test_body_over_64_kib_is_413(client, runtime, world) -> None:
    filler = "x" * (64 * 1024)
    body = {**LEAD, "source_id": str(world.source_id), "notes": filler}
    response = await client.post("/api/leads", json=body)
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "payload_too_large"

    # Without a Content-Length header the stream is still cut at the limit.
    async def chunks():
        yield b'{"notes": "'
        for _ in range(70):
            yield b"y" * 1024
        yield b'"}'

    streamed = await client.post("/api/leads", content=chunks())
    assert streamed.status_code == 413
    assert await count(runtime, "SELECT count(*) FROM leads") == 0


async def test_get_lead_shape_and_not_found(client, world) -> None:
    created = await client.post("/api/leads", json={**LEAD, "source_id": str(world.source_id)})
    lead_id = created.json()["lead_id"]
    got = await client.get(f"/api/leads/{lead_id}")
    assert got.status_code == 200
    data = got.json()
    assert data["lead_id"] == lead_id and data["status"] == "received"
    assert data["rejection_reasons"] == [] and data["routed_at"] is None
    assert data["delivered_at"] is None
    assert (await client.get(f"/api/leads/{uuid.uuid4()}")).status_code == 404
    bad = await client.get("/api/leads/not-a-uuid")
    assert bad.status_code == 404 and bad.json()["error"]["code"] == "lead_not_found"


async def test_classification_does_not_hardcode_markets(client, runtime) -> None:
    async with unit_of_work(runtime.db) as conn:
        uk = await make_world(conn, country="GB", timezone="Europe/London")
    body = {**LEAD, "phone": "020 7946 0958", "source_id": str(uk.source_id)}
    response = await client.post("/api/leads", json=body)
    assert response.json()["market_id"] == str(uk.market_id)
    async with single_statements(runtime.db) as conn:
        phone = (await run(conn, "SELECT normalized_phone FROM leads")).scalar()
    assert phone == "+442079460958"


async def test_openapi_documents_the_ingestion_routes(client) -> None:
    spec = (await client.get("/openapi.json")).json()
    assert "/api/leads" in spec["paths"] and "/api/leads/{lead_id}" in spec["paths"]


async def test_fast_path_keeps_the_outer_middleware_contract(client, world) -> None:
    """POSTs skip FastAPI's router (decision 0012) but keep the request id and the
    shared error body; other methods on /api/leads still go through the router."""
    ok = await client.post(
        "/API/Leads/",
        json={**LEAD, "source_id": str(world.source_id)},
        headers={"x-request-id": "fast-1"},
    )
    assert ok.status_code == 201 and ok.headers["x-request-id"] == "fast-1"
    bad = await client.post("/api/leads", content=b"[]", headers={"x-request-id": "fast-2"})
    assert bad.status_code == 400 and bad.headers["x-request-id"] == "fast-2"
    assert set(bad.json()["error"]) == {"code", "message", "details"}
    wrong_method = await client.put("/api/leads")
    assert wrong_method.status_code == 405
    assert wrong_method.json()["error"]["code"] == "method_not_allowed"
