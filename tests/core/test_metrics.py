"""GET /metrics: this process's HTTP and pipeline counters and the system's state read
from the database, protected in production; the Grafana dashboard's metric names exist."""

from __future__ import annotations

import json
import re
from pathlib import Path

import httpx
from prometheus_client.parser import text_string_to_metric_families

from leadflood.app import create_app
from leadflood.core.settings import Environment
from leadflood.core.uow import unit_of_work
from tests.buyer_server import BuyerServer
from tests.conftest import drain_jobs, make_settings
from tests.factories import make_buyer, make_world
from tests.sql import run

DASHBOARD = Path(__file__).resolve().parents[2] / "docs" / "grafana" / "leadflood-dashboard.json"
LEAD = {"first_name": "Ana", "phone": "(602) 253-1234", "postal_code": "85001", "consent": True}


def samples(text: str) -> dict[str, list]:
    """Metric family name -> its samples (name, labels, value)."""
    return {
        f.name: [(s.name, s.labels, s.value) for s in f.samples]
        for f in text_string_to_metric_families(text)
    }


async def test_metrics_show_requests_the_pipeline_and_the_systems_state(runtime, client) -> None:
    def created(text: str) -> float:
        """/api/leads 201s counted by this process so far (other tests' included)."""
        return sum(
            s[2]
            for s in samples(text).get("leadflood_http_requests", [])
            if s[0].endswith("_total") and s[1]["route"] == "/api/leads" and s[1]["status"] == "201"
        )

    before = created((await client.get("/metrics")).text)
    with BuyerServer() as buyer_server:
        async with unit_of_work(runtime.db) as conn:
            world = await make_world(conn)
            await make_buyer(conn, world, name="Acme", webhook_url=buyer_server.url())
            paused = await make_buyer(conn, world, name="Sleepy", postal_codes=["99999"])
            await run(conn, "UPDATE buyers SET status = 'paused' WHERE id = :b", {"b": paused})
        for n in range(3):
            posted = await client.post(
                "/api/leads",
                json={
                    **LEAD,
                    "source_id": str(world.source_id),
                    "email": f"a{n}@example.com",
                    "phone": f"602-253-123{n}",
                },
            )
            assert posted.status_code == 201
        await client.post("/api/leads/x", content=b"\x00")  # a refused post is counted too
        await drain_jobs(runtime)
    page = await client.get("/metrics")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/plain")
    found = samples(page.text)
    http = {
        (s[1]["route"], s[1]["status"]): s[2]
        for s in found["leadflood_http_requests"]
        if s[0].endswith("_total")
    }
    assert http[("/api/leads", "201")] - before == 3
    assert any(status == "400" for (_, status) in http)
    leads = {s[1]["status"]: s[2] for s in found["leadflood_leads_1h"]}
    assert leads == {"delivered": 3}
    stages = {(s[1]["stage"], s[1]["quantile"]) for s in found["leadflood_stage_latency_seconds"]}
    assert {("validated", "0.95"), ("routed", "0.95"), ("delivered", "0.95")} <= stages
    attempts = {
        (s[1]["outcome"], s[1]["buyer"]): s[2] for s in found["leadflood_delivery_attempts_5m"]
    }
    assert attempts == {("success", "Acme"): 3}
    assert found["leadflood_buyers_paused"][0][2] == 1
    transitions = {s[1]["stage"] for s in found["leadflood_lead_transitions"]}
    assert {"validated", "routed", "delivered"} <= transitions
    assert "leadflood_jobs" in found and "leadflood_job_oldest_queued_seconds" in found


async def test_metrics_are_closed_in_production_without_the_token(database_url) -> None:
    from leadflood.core.runtime import build_runtime

    strong = "k" * 48
    for token, header, expected in (
        (None, None, 404),
        ("metrics-secret-123", None, 401),
        ("metrics-secret-123", "Bearer wrong", 401),
        ("metrics-secret-123", "Bearer metrics-secret-123", 200),
    ):
        settings = make_settings(
            database_url, env=Environment.production, secret_key=strong, metrics_token=token
        )
        runtime = build_runtime(settings, database_url)
        transport = httpx.ASGITransport(app=create_app(runtime))
        async with httpx.AsyncClient(transport=transport, base_url="https://t") as http:
            headers = {"authorization": header} if header else {}
            response = await http.get("/metrics", headers=headers)
        await runtime.close()
        assert response.status_code == expected, (token, header, response.text)
        if expected == 200:
            assert "leadflood_jobs" in response.text and "metrics-secret" not in response.text


async def test_every_metric_the_dashboard_charts_exists(client) -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    charted = {
        name
        for panel in dashboard["panels"]
        for target in panel["targets"]
        for name in re.findall(r"\bleadflood_[a-z0-9_]+", target["expr"])
    }
    assert len(charted) >= 12
    await client.get("/health")
    text = (await client.get("/metrics")).text
    exposed = set(re.findall(r"^# TYPE (leadflood_[a-z0-9_]+)", text, re.MULTILINE))
    suffixes = ("", "_total", "_bucket", "_count", "_sum")
    missing = {
        n
        for n in charted
        if not any(n.removesuffix(s) in exposed for s in suffixes if n.endswith(s))
    }
    assert missing == set()
