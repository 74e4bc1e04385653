"""Issue 14: hostile input is a 400/408/413 with a stable code on every route, never a 500,
and nothing is buffered past the limit."""

from __future__ import annotations

import asyncio
import socket
import time

import orjson
import pytest

from leadflood.app import create_app
from leadflood.core.request_guard import MAX_JSON_DEPTH
from leadflood.core.uow import unit_of_work
from tests.conftest import make_settings
from tests.live import LiveServer


def nested(depth: int) -> bytes:
    return b'{"first_name": "a", "x": ' + b"[" * depth + b"]" * depth + b"}"


NUL_QUERIES = [
    "/v1/admin/leads?q=a%00b",
    "/v1/admin/markets?limit=10&status=%00",
    "/v1/leads?q=%00",
    "/v1/admin/deliveries?status=%00",
    "/leads?q=%00",
    "/outreach/leads?q=x%00",
    "/api/leads/abc%00",
]


@pytest.mark.parametrize("path", NUL_QUERIES)
async def test_nul_in_a_query_or_path_is_a_400_everywhere(client, admin, path) -> None:
    response = await client.get(path, headers=admin)
    assert response.status_code == 400, response.text
    assert response.json()["error"]["code"] == "nul_character"


NUL_BODIES = [
    ("/v1/auth/login", {"email": "a\u0000@example.com", "password": "x"}),
    ("/v1/admin/markets", {"slug": "m", "name": "N\u0000", "country": "US", "timezone": "UTC"}),
    ("/v1/icps", {"name": "icp", "titles": ["CEO\u0000"]}),
    ("/v1/leads", {"email": "z@example.com", "first_name": "\u0000"}),
    ("/v1/suppressions", {"address": "x\u0000@example.com"}),
    ("/api/leads", {"first_name": "a\u0000"}),
    ("/v1/admin/markets", {"slug\u0000": "m"}),
]


@pytest.mark.parametrize(("path", "body"), NUL_BODIES)
async def test_nul_in_any_json_body_is_a_400(client, admin, path, body) -> None:
    response = await client.post(path, json=body, headers=admin)
    assert response.status_code == 400, response.text
    assert response.json()["error"]["code"] == "nul_character"


async def test_nul_in_a_form_post_is_a_400(client) -> None:
    response = await client.post(
        "/login",
        content=b"email=a%00b&password=x",
        headers={"content-type": "application/x-www-form-urlencoded"},
    )
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "nul_character"


@pytest.mark.parametrize("depth", [MAX_JSON_DEPTH + 1, 300, 1000, 5000])
@pytest.mark.parametrize("path", ["/api/leads", "/v1/admin/markets", "/v1/auth/login"])
async def test_deeply_nested_json_is_a_400(client, admin, path, depth) -> None:
    response = await client.post(
        path, content=nested(depth), headers={**admin, "content-type": "application/json"}
    )
    assert response.status_code == 400, response.text
    assert response.json()["error"]["code"] == "nesting_too_deep"


async def test_nesting_within_the_limit_is_accepted_and_delivered_intact(client, runtime) -> None:
    from tests.factories import make_world

    async with unit_of_work(runtime.db) as conn:
        world = await make_world(conn)
    custom = {"a": {"b": {"c": [1, [2, [3]]]}}}
    response = await client.post(
        "/api/leads",
        json={
            "source_key": world.source_key,
            "first_name": "Ana",
            "phone": "6025550123",
            "postal_code": "85001",
            "consent": True,
            "extra": custom,
        },
    )
    assert response.status_code == 201, response.text


@pytest.mark.parametrize(
    "path",
    [
        "/v1/admin/markets?offset=99999999999999999999",
        "/v1/admin/leads?limit=99999999999999999999",
        "/v1/admin/markets?limit=-1",
        "/v1/admin/dashboard?days=100000000000000000000000",
    ],
)
async def test_integers_out_of_range_are_400_with_field_details(client, admin, path) -> None:
    response = await client.get(path, headers=admin)
    assert response.status_code == 400, response.text
    assert response.json()["error"]["code"] in {"invalid_request", "invalid_value", "invalid_limit"}


async def test_an_integer_too_big_for_its_column_is_a_400(client, admin) -> None:
    response = await client.post(
        "/v1/admin/markets",
        json={"slug": "m1", "name": "M", "country": "US", "timezone": "UTC"},
        headers=admin,
    )
    assert response.status_code == 201, response.text
    market = response.json()["id"]
    body = {
        "name": "B",
        "email": "b@example.com",
        "delivery_channel": "email",
        "daily_cap": 10**30,
    }
    response = await client.post("/v1/admin/buyers", json=body, headers=admin)
    assert response.status_code == 400, response.text
    assert market


async def test_a_body_past_the_limit_is_refused_without_reading_the_rest(runtime) -> None:
    app = create_app(runtime)
    limit = runtime.settings.max_request_bytes
    consumed = 0
    chunk = b" " * (1024 * 1024)

    async def receive():
        nonlocal consumed
        consumed += 1
        if consumed > 200:  # a 200 MiB stream: the guard must stop long before
            return {"type": "http.disconnect"}
        return {"type": "http.request", "body": chunk, "more_body": True}

    sent: list[dict] = []

    async def send(message):
        sent.append(message)

    scope = {
        "type": "http",
        "method": "POST",
        "path": "/v1/auth/login",
        "raw_path": b"/v1/auth/login",
        "query_string": b"",
        "headers": [(b"content-type", b"application/json")],
        "client": ("127.0.0.1", 1),
        "server": ("testserver", 80),
        "scheme": "http",
        "http_version": "1.1",
        "root_path": "",
    }
    await app(scope, receive, send)
    assert sent[0]["status"] == 413
    assert orjson.loads(sent[1]["body"])["error"]["code"] == "payload_too_large"
    assert consumed <= limit // len(chunk) + 2


async def test_a_declared_oversized_body_is_refused_before_reading(client, admin) -> None:
    response = await client.post(
        "/v1/admin/markets",
        content=b"{}",
        headers={**admin, "content-type": "application/json", "content-length": "999999999"},
    )
    assert response.status_code == 413


@pytest.fixture
def slow_server(database_url):
    settings = make_settings(database_url, request_header_timeout_s=1.0, request_body_timeout_s=1.0)
    with LiveServer(settings, database_url) as server:
        yield server


def _exchange(port: int, parts: list[bytes], pause_s: float) -> tuple[bytes, float]:
    started = time.monotonic()
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        received = b""
        for part in parts:
            try:
                sock.sendall(part)
            except OSError:
                break
            time.sleep(pause_s)
        sock.settimeout(10)
        try:
            while chunk := sock.recv(4096):
                received += chunk
        except OSError:
            pass
    return received, time.monotonic() - started


async def test_headers_trickled_byte_by_byte_are_cut_off(slow_server) -> None:
    request = b"GET /health HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 30 + b"\r\n\r\n"
    parts = [request[i : i + 1] for i in range(len(request))]
    received, took = await asyncio.to_thread(_exchange, slow_server.port, parts, 0.3)
    assert received.startswith(b"HTTP/1.1 408"), received[:80]
    assert took < 6


async def test_a_body_trickled_or_shorter_than_declared_is_cut_off(slow_server) -> None:
    head = (
        b"POST /v1/auth/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"Content-Length: 100\r\n\r\n"
    )
    # Declares 100 bytes, sends 10, one every 0.4 s, then nothing.
    parts = [head, *[b"{" for _ in range(3)]]
    received, took = await asyncio.to_thread(_exchange, slow_server.port, parts, 0.4)
    assert b" 408 " in received.split(b"\r\n", 1)[0], received[:120]
    assert b"request_timeout" in received
    assert took < 6


async def test_ingestion_bodies_have_the_same_deadline(slow_server) -> None:
    head = (
        b"POST /api/leads HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"Content-Length: 50\r\n\r\n"
    )
    received, _ = await asyncio.to_thread(_exchange, slow_server.port, [head, b"{"], 0.2)
    assert b" 408 " in received.split(b"\r\n", 1)[0], received[:120]


@pytest.mark.parametrize(
    ("csv_text", "inserted"),
    [("85001\r85002\r85003", 3), ("85001\r\n85002\r\n", 2), ("postal_code\r85004\r", 1)],
)
async def test_csv_imports_read_any_line_ending(client, admin, runtime, csv_text, inserted):
    from tests.factories import make_buyer, make_world

    async with unit_of_work(runtime.db) as conn:
        world = await make_world(conn)
        buyer = await make_buyer(conn, world, market_wide=False)
    response = await client.post(
        f"/v1/admin/buyers/{buyer}/service-areas/import",
        json={"market_id": str(world.market_id), "csv": csv_text},
        headers=admin,
    )
    assert response.status_code == 200, response.text
    assert response.json()["inserted"] == inserted


async def test_an_unreadable_csv_line_is_a_400_naming_it(client, admin, runtime) -> None:
    from tests.factories import make_buyer, make_world

    async with unit_of_work(runtime.db) as conn:
        world = await make_world(conn)
        buyer = await make_buyer(conn, world, market_wide=False)
    response = await client.post(
        f"/v1/admin/buyers/{buyer}/service-areas/import",
        json={"market_id": str(world.market_id), "csv": '85001\n"85002\n'},
        headers=admin,
    )
    assert response.status_code in (200, 400), response.text
    if response.status_code == 400:
        assert response.json()["error"]["code"] == "invalid_csv"


@pytest.mark.parametrize(
    "body",
    [
        b'{"name": "P", "config": {"x": -29267115830955471266593166589952}}',
        b'{"name": "\\ud8ae", "config": {}}',
        b'{"name": "P", "config": {"x": NaN}}',
        b'{"name": "P", "config": {"\\udd2d": 1}}',
        b'{"name": "\xff\xfe"}',
    ],
)
async def test_json_that_cannot_be_stored_is_a_400_not_a_500(client, admin, body) -> None:
    """Found by the schema fuzz: Python's json accepts these; nothing downstream can."""
    response = await client.post(
        "/v1/admin/routing-policies",
        content=body,
        headers={**admin, "content-type": "application/json"},
    )
    assert response.status_code == 400, response.text
    assert response.json()["error"]["code"] == "invalid_json"


@pytest.mark.parametrize(("trusted", "limited"), [([], True), (["127.0.0.1"], False)])
async def test_forwarded_for_is_believed_only_from_configured_proxies(
    database_url, trusted, limited
) -> None:
    """A local client rotating X-Forwarded-For used to get a fresh rate-limit bucket."""
    import httpx

    settings = make_settings(database_url, api_rate_limit_per_minute=3, trusted_proxies=trusted)
    with LiveServer(settings, database_url) as server:
        async with httpx.AsyncClient(base_url=server.url) as http:
            statuses = [
                (
                    await http.get("/v1/auth/me", headers={"x-forwarded-for": f"203.0.113.{i}"})
                ).status_code
                for i in range(8)
            ]
    assert (429 in statuses) is limited, statuses
