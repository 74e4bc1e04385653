"""Ping benchmark: the decision of POST /api/ping, against a same-run baseline.

Three offers on one freshly migrated database, the app in process (httpx over ASGI, so
the figures are the server's own work), bidders in a process of their own (uvicorn):

1. 1,000 fixed-price contracts on one offer: every contract is judged (service area,
   schedule, caps, balance, exclusivity) and bids its price; no bidder is asked.
   Target: ping p95 <= 30 ms. Baseline: GET /health on the same app.
2. 20 external bidders, each answering after 50 ms. Target: ping p95 within 20 ms of the
   slowest bidder's own latency, measured in the same run by asking the 20 bidders
   directly in parallel (the baseline).
3. One bidder that hangs, the offer's budget 300 ms. Target: p95 <= budget + 20 ms.

    python bench/ping.py
"""

from __future__ import annotations

import asyncio
import gc
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import aiohttp
import httpx

from bench.common import summarize
from leadflood.app import create_app
from leadflood.core import migrate
from leadflood.core.runtime import build_runtime
from leadflood.core.settings import Environment, Settings
from tests.live import free_port
from tests.pg import recreate_database, server_url

CONTRACTS, BIDDERS, DELAY_S = 1000, 20, 0.05
N_FIXED, N_PINGED, N_HANGING = 500, 200, 40
RULES = '{"outcome_path": "$.accepted", "outcome_term": "true", "price_path": "$.price", "reference_path": "$.token"}'  # noqa: E501


def bidder_app():  # type: ignore[no-untyped-def]
    from starlette.applications import Starlette
    from starlette.responses import Response
    from starlette.routing import Route

    async def bid(request):  # type: ignore[no-untyped-def]
        await request.body()
        await asyncio.sleep(DELAY_S)
        return Response(
            b'{"accepted": true, "price": "31.00", "token": "t"}', media_type="application/json"
        )

    async def hang(request):  # type: ignore[no-untyped-def]
        await request.body()
        await asyncio.sleep(60)
        return Response(b"{}")

    return Starlette(
        routes=[Route("/bid", bid, methods=["POST"]), Route("/hang", hang, methods=["POST"])]
    )


async def build(conn, bidder_port: int) -> dict[str, str]:  # type: ignore[no-untyped-def]
    vp = await conn.fetchval("INSERT INTO validation_policies (name) VALUES ('v') RETURNING id")
    rp = await conn.fetchval("INSERT INTO routing_policies (name) VALUES ('p') RETURNING id")
    vertical = await conn.fetchval(
        "INSERT INTO verticals (slug, name) VALUES ('solar', 'Solar') RETURNING id"
    )
    market = await conn.fetchval(
        "INSERT INTO markets (slug, name, timezone) VALUES ('az', 'AZ', 'America/Phoenix') "
        "RETURNING id"
    )
    sources = {}
    for name in ("fixed", "pinged", "hanging"):
        offer = await conn.fetchval(
            "INSERT INTO offers (slug, name, market_id, vertical_id, validation_policy_id, "
            "routing_policy_id) VALUES ($1, $1, $2, $3, $4, $5) RETURNING id",
            name,
            market,
            vertical,
            vp,
            rp,
        )
        sources[name] = str(
            await conn.fetchval(
                "INSERT INTO sources (name, offer_id, source_key, payout_type, payout_cents) "
                "VALUES ($1, $2, $1, 'bid_margin', 300) RETURNING id",
                name,
                offer,
            )
        )
        count = {"fixed": CONTRACTS, "pinged": BIDDERS, "hanging": 3}[name]
        for n in range(count):
            asks = name != "fixed" and not (name == "hanging" and n > 0)
            path = "hang" if name == "hanging" else "bid"
            buyer = await conn.fetchval(
                "INSERT INTO buyers (name, webhook_url, daily_cap, payment_method, "
                "balance_cents, schedule, ping_integration, ping_rules, ping_timeout_ms) "
                "VALUES ($1, 'http://127.0.0.1:9/x', 100000, $2, 10000000, $3::jsonb, "
                "$4::jsonb, $5::jsonb, 1000) RETURNING id",
                f"{name}-{n}",
                "prepaid" if n % 2 else "ach",
                '{"mon": [["00:00","24:00"]], "tue": [["00:00","24:00"]], '
                '"wed": [["00:00","24:00"]], "thu": [["00:00","24:00"]], '
                '"fri": [["00:00","24:00"]], "sat": [["00:00","24:00"]], '
                '"sun": [["00:00","24:00"]]}'
                if n % 3 == 0
                else "{}",
                (
                    f'{{"url": "http://127.0.0.1:{bidder_port}/{path}", '
                    '"fields": {"zip": "{{ postal_code }}"}}'
                )
                if asks
                else None,
                RULES if asks else None,
            )
            await conn.execute(
                "INSERT INTO buyer_offers (buyer_id, offer_id, priority, price_cents, daily_cap) "
                "VALUES ($1, $2, $3, $4, 100000)",
                buyer,
                offer,
                n % 10,
                1000 + n,
            )
            # Half cover the whole market, half a few postal codes (85001 among them).
            codes = [None] if n % 2 else ["85001", "85002", f"85{n % 90 + 10:03d}"]
            for code in codes:
                await conn.execute(
                    "INSERT INTO buyer_service_areas (buyer_id, market_id, postal_code) "
                    "VALUES ($1, $2, $3)",
                    buyer,
                    market,
                    code,
                )
    await conn.execute("UPDATE offers SET ping_budget_ms = 300")
    await conn.execute("VACUUM ANALYZE")
    return sources


async def timed_pings(client: httpx.AsyncClient, source: str, n: int) -> tuple[list[float], float]:
    body = {"source_id": source, "postal_code": "85001", "state": "AZ"}
    samples = []
    started = time.perf_counter()
    for _ in range(n):
        t0 = time.perf_counter()
        response = await client.post("/api/ping", json=body)
        samples.append((time.perf_counter() - t0) * 1000)
        assert response.status_code == 200 and response.json()["accepted"], response.text
    return samples, time.perf_counter() - started


async def direct(bidder_port: int, n: int) -> list[float]:
    """The baseline of scenario 2: the 20 bidders asked directly, in parallel; the
    slowest answer of each round."""
    samples = []
    async with aiohttp.ClientSession() as session:

        async def one() -> None:
            async with session.post(f"http://127.0.0.1:{bidder_port}/bid", data=b"{}") as r:
                await r.read()

        for _ in range(n):
            t0 = time.perf_counter()
            await asyncio.gather(*(one() for _ in range(BIDDERS)))
            samples.append((time.perf_counter() - t0) * 1000)
    return samples


async def main(url: str, bidder_port: int) -> None:
    settings = Settings(
        env=Environment.test, database_url=url, db_pool_size=20, log_json=True, log_level="WARNING"
    )
    runtime = build_runtime(settings, url)
    async with runtime.db.pool_connection() as conn:
        sources = await build(conn, bidder_port)
    print(
        f"dataset: {CONTRACTS} fixed-price contracts on one offer; {BIDDERS} bidders at "
        f"{DELAY_S * 1000:.0f} ms on another; a hanging bidder on a third (budget 300 ms)"
    )
    app = create_app(runtime)
    gc.freeze()  # as the server's lifespan does at startup (httpx over ASGI runs none)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:
        await timed_pings(client, sources["fixed"], 20)  # warm the pool and caches
        health = []
        for _ in range(N_FIXED):
            t0 = time.perf_counter()
            await client.get("/health")
            health.append((time.perf_counter() - t0) * 1000)
        summarize("baseline: GET /health on the same app", health, sum(health) / 1000)
        samples, wall = await timed_pings(client, sources["fixed"], N_FIXED)
        fixed = summarize(f"ping: {CONTRACTS} fixed-price contracts", samples, wall)

        await direct(bidder_port, 5)
        base = summarize(
            f"baseline: {BIDDERS} bidders asked directly", await direct(bidder_port, N_PINGED), None
        )
        await timed_pings(client, sources["pinged"], 5)
        samples, wall = await timed_pings(client, sources["pinged"], N_PINGED)
        pinged = summarize(f"ping: {BIDDERS} bidders at {DELAY_S * 1000:.0f} ms", samples, wall)

        samples, wall = await timed_pings(client, sources["hanging"], N_HANGING)
        hanging = summarize("ping: a hanging bidder, budget 300 ms", samples, wall)
    await runtime.close()

    def verdict(ok: bool) -> str:
        return "PASS" if ok else "FAIL"

    print(f"target fixed p95 <= 30 ms: {verdict(fixed['p95'] <= 30)} ({fixed['p95']:.2f} ms)")
    over = pinged["p95"] - base["p95"]
    print(
        f"target bidders p95 within 20 ms of the slowest bidder: {verdict(over <= 20)} "
        f"(+{over:.2f} ms: {pinged['p95']:.2f} vs {base['p95']:.2f} ms)"
    )
    print(
        f"target hanging p95 <= 320 ms: {verdict(hanging['p95'] <= 320)} ({hanging['p95']:.2f} ms)"
    )


def _wait_for(port: int) -> None:
    import socket

    for _ in range(200):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.1).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("the bidder process did not start")


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--bidder":
        import uvicorn

        uvicorn.run(
            bidder_app(),
            host="127.0.0.1",
            port=int(sys.argv[2]),
            log_level="warning",
            access_log=False,
            loop="uvloop",
            http="httptools",
        )
        sys.exit(0)
    port = free_port()
    bidder = subprocess.Popen([sys.executable, __file__, "--bidder", str(port)])
    try:
        _wait_for(port)
        database_url = recreate_database(server_url(), "leadflood_bench_ping")
        migrate.upgrade(database_url)
        asyncio.run(main(database_url, port))
    finally:
        bidder.terminate()
