"""The global /v1 rate limit and the CORS allow-list."""

from __future__ import annotations

import httpx

from leadflood.app import create_app


async def client_for(runtime) -> httpx.AsyncClient:
    app = create_app(runtime)
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app, raise_app_exceptions=False),
        base_url="http://testserver",
    )


async def test_v1_requests_beyond_the_budget_get_429(runtime) -> None:
    runtime.settings.api_rate_limit_per_minute = 5
    async with await client_for(runtime) as client:
        statuses = [(await client.get("/v1/auth/me")).status_code for _ in range(7)]
        assert statuses[:5] == [401] * 5 and statuses[5:] == [429, 429]
        limited = await client.get("/v1/auth/me")
        assert limited.json()["error"]["code"] == "rate_limited"
        assert 1 <= int(limited.headers["retry-after"]) <= 12
        # Lead ingestion and health checks are not part of the user API budget.
        assert (await client.get("/health")).status_code == 200
        posted = await client.post("/api/leads", json={"source_key": "nope"})
        assert posted.status_code != 429


async def test_cors_allows_only_configured_origins(runtime) -> None:
    runtime.settings.cors_origins = ["https://app.example.com"]
    async with await client_for(runtime) as client:
        preflight = {"origin": "https://app.example.com", "access-control-request-method": "POST"}
        ok = await client.options("/v1/auth/login", headers=preflight)
        assert ok.headers["access-control-allow-origin"] == "https://app.example.com"
        other = await client.options(
            "/v1/auth/login", headers={**preflight, "origin": "https://evil.example"}
        )
        assert "access-control-allow-origin" not in other.headers
    runtime.settings.cors_origins = []
    async with await client_for(runtime) as client:
        plain = await client.get("/health", headers={"origin": "https://app.example.com"})
        assert "access-control-allow-origin" not in plain.headers
