"""Ingestion benchmark: POST /api/leads on a running server, real PostgreSQL.

Runs, against Lead Flood and then against the floor (bare FastAPI + asyncpg,
one INSERT) in the same run:
  1. 100 sequential requests,
  2. a sustained open-loop load at --rate req/s for --seconds,
  3. a closed-loop maximum-throughput run (--concurrency in flight).
Target (DISTRIBUTION.md §9): p95 ≤ 15 ms at 200 req/s; ≥ 50 % of the floor's
throughput.

    python bench/ingest.py [--rate 200] [--seconds 10] [--concurrency 32]
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

import orjson

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench import loadgen  # noqa: E402
from bench.common import summarize  # noqa: E402
from leadflood.core import migrate  # noqa: E402
from leadflood.core.uow import unit_of_work  # noqa: E402
from tests.live import free_port  # noqa: E402
from tests.pg import recreate_database, server_url  # noqa: E402


async def seed(url: str) -> str:
    from leadflood.core.db import Database
    from tests.factories import make_world

    db = Database(url)
    async with unit_of_work(db) as conn:
        world = await make_world(conn)
    await db.dispose()
    return str(world.source_id)


def wait_ready(port: int, path: str = "/health") -> None:
    import httpx

    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}{path}", timeout=1).status_code < 500:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"server on {port} did not start")


def body_factory(source_id: str | None):
    run = uuid.uuid4().hex[:8]

    def make(i: int) -> bytes:
        doc = {
            "first_name": "Ana",
            "last_name": f"Lopez{i}",
            "email": f"ana.{run}.{i}@example.com",
            "phone": f"(602) 253-{i % 10000:04d}",
            "postal_code": "85001",
            "consent": True,
            "idempotency_key": f"bench-{run}-{i}",
            "utm_source": "bench",
        }
        if source_id:
            doc["source_id"] = source_id
        return orjson.dumps(doc)

    return make


async def measure(label: str, port: int, make, args) -> dict:
    samples, wall, errors = await loadgen.sequential("127.0.0.1", port, "/api/leads", make, 100)
    summarize(f"{label}: 100 sequential", samples, wall)
    samples, wall, errors2 = await loadgen.open_loop(
        "127.0.0.1", port, "/api/leads", make, args.rate, args.seconds
    )
    at_rate = summarize(f"{label}: open loop {args.rate:.0f} req/s", samples, wall)
    samples, wall, errors3 = await loadgen.closed_loop(
        "127.0.0.1", port, "/api/leads", make, args.concurrency, args.seconds
    )
    peak = summarize(f"{label}: closed loop x{args.concurrency} (max)", samples, wall)
    total_errors = errors + errors2 + errors3
    if total_errors:
        print(f"  !! {label}: {total_errors} non-2xx responses")
    return {"at_rate": at_rate, "peak": peak, "errors": total_errors}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rate", type=float, default=200)
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--concurrency", type=int, default=32)
    args = parser.parse_args()

    admin = server_url()
    url = recreate_database(admin, "leadflood_bench_ingest")
    migrate.upgrade(url)
    source_id = asyncio.run(seed(url))
    env = {
        **os.environ,
        "LEADFLOOD_DATABASE_URL": url,
        "LEADFLOOD_LOG_LEVEL": "WARNING",
        "LEADFLOOD_ENV": "test",
    }
    python = sys.executable

    port = free_port()
    server = subprocess.Popen(
        [
            python,
            "-m",
            "leadflood.cli",
            "serve",
            "--port",
            str(port),
            "--no-worker",
            "--no-migrate",
        ],
        env=env,
        cwd=ROOT,
    )
    try:
        wait_ready(port)
        ours = asyncio.run(measure("leadflood", port, body_factory(source_id), args))
    finally:
        server.terminate()
        server.wait()

    port = free_port()
    floor = subprocess.Popen(
        [python, str(ROOT / "bench" / "floor_app.py"), url, str(port)], cwd=ROOT
    )
    try:
        wait_ready(port, "/docs")
        base = asyncio.run(
            measure("floor (FastAPI+asyncpg INSERT)", port, body_factory(None), args)
        )
    finally:
        floor.terminate()
        floor.wait()

    ratio = ours["peak"]["throughput"] / base["peak"]["throughput"]
    p95 = ours["at_rate"]["p95"]
    print(
        f"\nleadflood p95 at {args.rate:.0f} req/s: {p95:.2f} ms (target <= 15 ms): "
        f"{'PASS' if p95 <= 15 else 'FAIL'}"
    )
    print(
        f"leadflood peak throughput = {ratio * 100:.0f}% of floor (target >= 50%): "
        f"{'PASS' if ratio >= 0.5 else 'FAIL'}"
    )


if __name__ == "__main__":
    main()
