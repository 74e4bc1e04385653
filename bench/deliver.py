"""Delivery benchmark: 1,000 queued deliveries against a local buyer endpoint.

Prints (targets DISTRIBUTION.md §9):
  * delivery enqueue: the routing commit that writes the deliveries row and its
    deliver_lead job (p95 target ≤ 5 ms);
  * worker overhead per delivery excluding the buyer's time (deliver() minus the
    channel send; p95 target ≤ 20 ms);
  * deliveries/s draining the queue with one worker (target ≥ 500/s).
Same-run baseline: the same 1,000 POSTs sent straight to the buyer with aiohttp at the
same concurrency (the ceiling any worker on this machine could reach).

`--templated` runs it twice in one process, on fresh databases: the default signed
canonical JSON, then a buyer with its own integration (ten mapped fields with filters,
Basic auth, a nested JSON body) and response rules (an outcome at a JSON path and a
reference path), and prints the second's throughput as a share of the first (issue 16:
at least 90 %).

    python bench/deliver.py [--concurrency 50] [--templated]
"""

from __future__ import annotations

import argparse
import asyncio
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import aiohttp  # noqa: E402
import uvloop  # noqa: E402

from bench.common import summarize  # noqa: E402
from bench.ingest import wait_ready  # noqa: E402
from leadflood.core import migrate  # noqa: E402
from leadflood.core.jobs import load_job_modules, run_worker  # noqa: E402
from leadflood.core.runtime import build_runtime  # noqa: E402
from leadflood.core.uow import unit_of_work  # noqa: E402
from leadflood.delivery import channels, tasks  # noqa: E402
from leadflood.routing import repository as routing_repo  # noqa: E402
from leadflood.routing.tasks import Router  # noqa: E402
from tests.conftest import make_settings  # noqa: E402
from tests.factories import make_buyer, make_lead, make_world  # noqa: E402
from tests.live import free_port  # noqa: E402
from tests.pg import recreate_database, server_url  # noqa: E402

N = 1000


INTEGRATION = {
    "format": "json",
    "fields": {
        "lead_id": "{{ lead_id }}",
        "contact.first_name": "{{ first_name | upper }}",
        "contact.last_name": "{{ last_name }}",
        "contact.email": "{{ email | lower }}",
        "contact.phone": "{{ phone | e164 }}",
        "contact.phone_digits": "{{ phone | digits }}",
        "address.zip": "{{ postal_code }}",
        "address.state": "{{ state | default('') }}",
        "meta.offer": "{{ offer.slug }}",
        "meta.price": "{{ price }}",
    },
    "auth": "basic",
    "auth_username": "bench",
}
RULES = {"outcome_term": "true", "outcome_path": "$.accepted", "reference_path": "$.id"}


async def main(url: str, buyer_url: str, concurrency: int, templated: bool = False) -> float:
    from leadflood.core.logging import configure_logging

    configure_logging("WARNING")
    runtime = build_runtime(make_settings(url, log_level="WARNING", db_pool_size=60), url)
    extra = (
        {
            "integration": {**INTEGRATION, "url": buyer_url},
            "integration_secret": "bench-credential",
            "response_rules": RULES,
        }
        if templated
        else {}
    )
    async with unit_of_work(runtime.db) as conn:
        world = await make_world(conn)
        await make_buyer(conn, world, webhook_url=buyer_url, webhook_secret="bench-secret", **extra)
        leads = [await make_lead(conn, world) for _ in range(N)]

    enqueue_ms: list[float] = []
    original_commit = routing_repo.commit_route

    async def timed_commit(*args, **kwargs):
        t0 = time.perf_counter()
        try:
            return await original_commit(*args, **kwargs)
        finally:
            enqueue_ms.append((time.perf_counter() - t0) * 1000)

    routing_repo.commit_route = timed_commit
    routing = Router(runtime.db)
    for lead in leads:
        await routing.route(lead)
    summarize("delivery enqueue (routing commit + job)", enqueue_ms)

    send_ms: dict[int, float] = {}
    overhead_ms: list[float] = []
    original_send = channels.WebhookChannel.send
    original_deliver = tasks.DeliveryRun.deliver

    async def timed_send(self, message):
        t0 = time.perf_counter()
        try:
            return await original_send(self, message)
        finally:
            send_ms[id(asyncio.current_task())] = (time.perf_counter() - t0) * 1000

    async def timed_deliver(self, lead_id):
        t0 = time.perf_counter()
        outcome = await original_deliver(self, lead_id)
        total = (time.perf_counter() - t0) * 1000
        overhead_ms.append(total - send_ms.pop(id(asyncio.current_task()), 0.0))
        return outcome

    channels.WebhookChannel.send = timed_send
    tasks.DeliveryRun.deliver = timed_deliver
    load_job_modules()  # one-time imports are start-up cost, not throughput
    started = time.perf_counter()
    cpu0 = time.process_time()
    await run_worker(runtime, concurrency=concurrency, drain=True)
    wall = time.perf_counter() - started
    print(f"worker cpu {time.process_time() - cpu0:.2f}s wall {wall:.2f}s")
    summarize(f"worker overhead excl. buyer (x{concurrency})", overhead_ms, wall)
    async with runtime.db.pool_connection() as conn:
        delivered = await conn.fetchval("SELECT count(*) FROM leads WHERE status = 'delivered'")
    print(f"delivered {delivered}/{N} in {wall:.2f} s = {delivered / wall:.0f} deliveries/s")
    await runtime.close()
    channels.WebhookChannel.send, tasks.DeliveryRun.deliver = original_send, original_deliver
    routing_repo.commit_route = original_commit
    if templated:
        return delivered / wall

    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as client:
        sem = asyncio.Semaphore(concurrency)
        samples: list[float] = []

        async def post(i: int) -> None:
            async with sem:
                t0 = time.perf_counter()
                async with client.post(buyer_url, data=b'{"lead_id": "x%d"}' % i) as r:
                    await r.read()
                samples.append((time.perf_counter() - t0) * 1000)

        t0 = time.perf_counter()
        await asyncio.gather(*(post(i) for i in range(N)))
        summarize("baseline: bare aiohttp POSTs to the buyer", samples, time.perf_counter() - t0)
    return delivered / wall


def fresh_database(name: str) -> str:
    database_url = recreate_database(server_url(), name)
    migrate.upgrade(database_url)
    return database_url


ROUNDS = 2  # each mode twice, alternating, so neither always runs cold


async def both(buyer_url: str, concurrency: int, databases: dict[str, str]) -> None:
    rates: dict[str, list[float]] = {"default": [], "templated": []}
    for n in range(ROUNDS):
        for name in ("default", "templated") if n % 2 == 0 else ("templated", "default"):
            print(f"--- {name} buyer, round {n + 1}")
            rates[name].append(
                await main(databases[f"{name}{n}"], buyer_url, concurrency, name == "templated")
            )
    best = {name: max(values) for name, values in rates.items()}
    share = best["templated"] / best["default"]
    print(
        f"templated buyer: {best['templated']:.0f}/s vs default {best['default']:.0f}/s "
        f"(best of {ROUNDS} each; all: {rates}) = {share:.0%} of the default path "
        "(target >= 90%)"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--concurrency", type=int, default=10)
    parser.add_argument("--templated", action="store_true")
    args = parser.parse_args()
    if args.templated:
        databases = {
            f"{name}{n}": fresh_database(f"leadflood_bench_deliver_{name}{n}")
            for name in ("default", "templated")
            for n in range(ROUNDS)
        }
    else:
        database_url = fresh_database("leadflood_bench_deliver")
    port = free_port()
    buyer = subprocess.Popen([sys.executable, str(ROOT / "bench" / "buyer_app.py"), str(port)])
    try:
        wait_ready(port, "/received")
        # The loop `leadflood worker` runs on.
        buyer_url = f"http://127.0.0.1:{port}/leads"
        if args.templated:
            uvloop.run(both(buyer_url, args.concurrency, databases))
        else:
            uvloop.run(main(database_url, buyer_url, args.concurrency))
    finally:
        buyer.terminate()
        buyer.wait()
