"""End to end: leads posted at --rate/s to a running server (embedded worker) until the
buyer's webhook receives them. Prints p50/p95/p99 of posted → received.
Same-run baseline: the ingestion request alone (post → 201). Also printed: the leads of
the first second on their own (a cold process shows there) and each stage's latency from
the timestamps the pipeline records.
Target (DISTRIBUTION.md §9): p95 ≤ 250 ms at 100 leads/s.

    python bench/e2e.py [--rate 100] [--seconds 10] [--workers N] [--scaling]
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

import httpx  # noqa: E402
import orjson  # noqa: E402

from bench.common import fresh_database_and_buyer, summarize  # noqa: E402
from bench.ingest import wait_ready  # noqa: E402
from bench.loadgen import Connection  # noqa: E402
from leadflood.core.db import Database  # noqa: E402
from leadflood.core.uow import unit_of_work  # noqa: E402
from tests.factories import make_buyer, make_world  # noqa: E402


async def seed(url: str, buyer_url: str) -> str:
    db = Database(url)
    async with unit_of_work(db) as conn:
        world = await make_world(conn, rules={})
        await make_buyer(conn, world, webhook_url=buyer_url, webhook_secret="s")
    await db.dispose()
    return str(world.source_id)


async def post_all(
    port: int, source_id: str, rate: float, seconds: float
) -> tuple[dict[str, float], list[float]]:
    pool: asyncio.Queue[Connection] = asyncio.Queue()
    for _ in range(32):
        c = Connection("127.0.0.1", port)
        await c.open()
        pool.put_nowait(c)
    sent: dict[str, float] = {}
    ingest_ms: list[float] = []
    run = uuid.uuid4().hex[:8]

    async def one(i: int) -> None:
        conn = await pool.get()
        body = orjson.dumps(
            {
                "source_id": source_id,
                "first_name": "E",
                "postal_code": "85001",
                "phone": f"602253{i % 10000:04d}",
                "idempotency_key": f"{run}-{i}",
            }
        )
        t_wall, t0 = time.time(), time.perf_counter()
        try:
            status, payload = await conn.post("/api/leads", body)
        finally:
            pool.put_nowait(conn)
        ingest_ms.append((time.perf_counter() - t0) * 1000)
        if status == 201:
            sent[orjson.loads(payload)["lead_id"]] = t_wall

    tasks, started = [], time.perf_counter()
    for i in range(int(rate * seconds)):
        delay = started + i / rate - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(i)))
    await asyncio.gather(*tasks)
    return sent, ingest_ms


_STAGES = """
SELECT extract(epoch FROM l.validated_at - l.created_at) * 1000 AS validate,
       extract(epoch FROM l.routed_at - l.validated_at) * 1000 AS route,
       extract(epoch FROM a.started_at - l.routed_at) * 1000 AS deliver_wait,
       a.duration_ms AS send
FROM leads l JOIN deliveries d ON d.lead_id = l.id
JOIN delivery_attempts a ON a.delivery_id = d.id AND a.attempt_no = 1
"""


async def print_stages(url: str) -> None:
    """Where the time goes: each stage's latency from the timestamps the pipeline records."""
    db = Database(url)
    async with db.pool_connection() as conn:
        rows = await conn.fetch(_STAGES)
    await db.dispose()
    for stage in ("validate", "route", "deliver_wait", "send"):
        summarize(f"  stage: {stage}", [float(r[stage]) for r in rows if r[stage] is not None])


def run(args: argparse.Namespace, workers: int) -> dict:
    """One run: a fresh database, buyer and server, `workers` worker processes (0: the one
    embedded in serve); leads posted at args.rate for args.seconds."""
    url, buyer_port, port, buyer = fresh_database_and_buyer("leadflood_bench_e2e")
    env = {
        **os.environ,
        "LEADFLOOD_DATABASE_URL": url,
        "LEADFLOOD_LOG_LEVEL": "WARNING",
        "LEADFLOOD_ENV": "test",
        "LEADFLOOD_WORKER_CONCURRENCY": "20",
    }
    server = None
    processes: list[subprocess.Popen] = []
    try:
        wait_ready(buyer_port, "/received")
        source_id = asyncio.run(seed(url, f"http://127.0.0.1:{buyer_port}/leads"))
        embedded = "--worker" if workers == 0 else "--no-worker"
        server = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "leadflood.cli",
                "serve",
                "--port",
                str(port),
                "--no-migrate",
                embedded,
            ],
            env=env,
            cwd=ROOT,
        )
        processes = [
            subprocess.Popen([sys.executable, "-m", "leadflood.cli", "worker"], env=env, cwd=ROOT)
            for _ in range(workers)
        ]
        wait_ready(port)
        sent, ingest_ms = asyncio.run(post_all(port, source_id, args.rate, args.seconds))
        deadline = time.monotonic() + 30
        while True:
            arrivals = httpx.get(f"http://127.0.0.1:{buyer_port}/received").json()
            if len(arrivals) >= len(sent) or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        e2e = [(arrivals[k] - t) * 1000 for k, t in sent.items() if k in arrivals]
        first = min(sent.values(), default=0.0)
        cold = [
            (arrivals[k] - t) * 1000 for k, t in sent.items() if k in arrivals and t < first + 1
        ]
        summarize("baseline: ingestion request (post -> 201)", ingest_ms)
        row = summarize(f"end to end at {args.rate:.0f}/s (post -> webhook)", e2e)
        # Included above; shown apart because a cold process is slowest (decision 0011).
        summarize("  of which leads posted in the first second", cold)
        delivered = [arrivals[k] for k in sent if k in arrivals]
        span = (max(delivered) - first) if delivered else float("nan")
        throughput = len(delivered) / span if delivered else 0.0
        print(
            f"received {len(e2e)}/{len(sent)}; delivered {throughput:.0f} leads/s from the "
            f"first post to the last arrival; target p95 <= 250 ms: "
            f"{'PASS' if row['p95'] <= 250 and len(e2e) == len(sent) else 'FAIL'}"
        )
        asyncio.run(print_stages(url))
        return {"p95": row["p95"], "received": len(e2e), "sent": len(sent), "rate": throughput}
    finally:
        for proc in (server, buyer, *processes):
            if proc:
                proc.terminate()
                proc.wait()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rate", type=float, default=100)
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument(
        "--workers",
        type=int,
        default=0,
        help="separate `leadflood worker` processes (0 = embedded in serve)",
    )
    parser.add_argument(
        "--scaling",
        action="store_true",
        help="run with 1 and then 2 worker processes and compare their throughput",
    )
    args = parser.parse_args()
    if not args.scaling:
        run(args, args.workers)
        return
    results = {}
    for workers in (1, 2):
        print(f"--- {workers} worker process(es)")
        results[workers] = run(args, workers)
    one, two = results[1], results[2]
    print(
        f"scaling at {args.rate:.0f} leads/s offered: 1 worker {one['rate']:.0f} leads/s "
        f"(p95 {one['p95']:.0f} ms, {one['received']}/{one['sent']}), 2 workers "
        f"{two['rate']:.0f} leads/s (p95 {two['p95']:.0f} ms, {two['received']}/{two['sent']}): "
        f"{two['rate'] / one['rate']:.2f}x"
    )


if __name__ == "__main__":
    main()
