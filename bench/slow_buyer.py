"""A slow buyer must not starve ingestion (issue 14).

One `leadflood serve` at default settings (embedded worker, default pools). Offer A's
buyer answers only after its full timeout (9 s); offer B's buyer answers at once.
Baseline (same run): POST /api/leads to offer B at --rate/s with nothing else going on.
Then --stuck leads go to offer A, and while their deliveries wait on the slow buyer,
the same load is posted to offer B again. Before issue 14 the buyer call held a pooled
connection and the delivery row lock for the whole wait: ingestion p95 went from 67 ms
to about 5,000 ms. Target: p95 under the slow buyer within 2x of the baseline.

    python bench/slow_buyer.py [--rate 50] [--seconds 8] [--stuck 40]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import orjson  # noqa: E402

from bench.common import fresh_database_and_buyer, summarize  # noqa: E402
from bench.ingest import wait_ready  # noqa: E402
from bench.loadgen import open_loop  # noqa: E402
from leadflood.core.db import Database  # noqa: E402
from leadflood.core.uow import unit_of_work  # noqa: E402
from tests.factories import make_buyer, make_world  # noqa: E402

BUYER_TIMEOUT_MS = 9_000


async def seed(url: str, buyer_base: str) -> tuple[str, str]:
    db = Database(url)
    async with unit_of_work(db) as conn:
        slow_world = await make_world(conn, rules={})
        await make_buyer(
            conn,
            slow_world,
            webhook_url=f"{buyer_base}/slow",
            webhook_secret="s",
            delivery_timeout_ms=BUYER_TIMEOUT_MS,
        )
        fast_world = await make_world(conn, rules={})
        await make_buyer(conn, fast_world, webhook_url=f"{buyer_base}/leads", webhook_secret="s")
    await db.dispose()
    return str(slow_world.source_id), str(fast_world.source_id)


async def post(port: int, source_id: str, rate: float, seconds: float) -> list[float]:
    """POST /api/leads at `rate`/s (open loop): each request's latency (ms)."""
    run = uuid.uuid4().hex[:8]

    def body(i: int) -> bytes:
        return orjson.dumps(
            {
                "source_id": source_id,
                "first_name": "S",
                "postal_code": "85001",
                "phone": f"602253{i % 10000:04d}",
                "idempotency_key": f"{run}-{i}",
            }
        )

    samples, _, errors = await open_loop("127.0.0.1", port, "/api/leads", body, rate, seconds)
    if errors:
        raise RuntimeError(f"{errors} posts failed")
    return samples


async def waiting_on_slow_buyer(url: str) -> int:
    db = Database(url)
    async with db.pool_connection() as conn:
        n = await conn.fetchval("SELECT count(*) FROM delivery_attempts WHERE finished_at IS NULL")
    await db.dispose()
    return int(n)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rate", type=float, default=50)
    parser.add_argument("--seconds", type=float, default=8)
    parser.add_argument("--stuck", type=int, default=40)
    args = parser.parse_args()
    url, buyer_port, port, buyer = fresh_database_and_buyer("leadflood_bench_slow_buyer")
    env = {**os.environ, "LEADFLOOD_DATABASE_URL": url, "LEADFLOOD_LOG_LEVEL": "WARNING"}
    server = None
    try:
        wait_ready(buyer_port, "/received")
        slow_source, fast_source = asyncio.run(seed(url, f"http://127.0.0.1:{buyer_port}"))
        server = subprocess.Popen(
            [sys.executable, "-m", "leadflood.cli", "serve", "--port", str(port), "--no-migrate"],
            env=env,
            cwd=ROOT,
        )
        wait_ready(port)
        asyncio.run(post(port, fast_source, args.rate, 1))  # warm the connections
        baseline = asyncio.run(post(port, fast_source, args.rate, args.seconds))
        asyncio.run(post(port, slow_source, args.stuck / 0.5, 0.5))
        time.sleep(1.0)  # the slow deliveries are now in flight
        stuck = asyncio.run(waiting_on_slow_buyer(url))
        loaded = asyncio.run(post(port, fast_source, args.rate, args.seconds))
        base = summarize("baseline: POST /api/leads, no slow buyer", baseline)
        row = summarize(f"POST /api/leads while {stuck} deliveries wait", loaded)
        ratio = row["p95"] / base["p95"] if base["p95"] else float("inf")
        print(
            f"p95 ratio {ratio:.2f}x (target <= 2x): {'PASS' if ratio <= 2 else 'FAIL'}; "
            f"attempts open on the slow buyer during the run: {stuck}"
        )
    finally:
        for proc in (server, buyer):
            if proc:
                proc.terminate()
                proc.wait()


if __name__ == "__main__":
    main()
