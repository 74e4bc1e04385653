"""Storage: bytes per lead across every table after the whole pipeline.

Posts --leads leads (a realistic form post) through the app to an offer with 100 buyers
(20 covering the leads' postal codes, 80 elsewhere: every decision's trace names 100
candidates), lets the worker validate, route and deliver each to a real local buyer
endpoint, then compacts the tables (VACUUM FULL) and prints each table's growth per lead:
heap, TOAST and indexes. Same-run baseline: the bytes of the JSON body each lead was
posted as. pgqueuer's job log is shown apart: it is pruned after
`job_log_retention_days` (7), so it is not kept per lead.
Budget (docs/decisions/0024): ≤ 8 KiB kept per lead, every other table in.

    python bench/storage.py [--leads 1000]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402
import orjson  # noqa: E402

from leadflood.app import create_app  # noqa: E402
from leadflood.core import migrate  # noqa: E402
from leadflood.core.logging import configure_logging  # noqa: E402
from leadflood.core.runtime import build_runtime  # noqa: E402
from leadflood.core.uow import unit_of_work  # noqa: E402
from tests.buyer_server import BuyerServer  # noqa: E402
from tests.conftest import drain_jobs, make_settings  # noqa: E402
from tests.factories import make_buyer, make_world  # noqa: E402
from tests.pg import recreate_database, server_url  # noqa: E402

BUDGET_BYTES = 8 * 1024
TRANSIENT = {"pgqueuer_log", "pgqueuer"}  # pruned, or deleted when the job is done
CODES = [f"850{i:02d}" for i in range(20)]

_SIZES = """
SELECT c.relname AS table, pg_relation_size(c.oid) AS heap,
       coalesce(pg_total_relation_size(c.reltoastrelid), 0) AS toast,
       pg_indexes_size(c.oid) AS indexes
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind = 'r' AND n.nspname IN ('public', 'outreach')
"""


async def sizes(runtime) -> dict[str, tuple[int, int, int]]:
    async with runtime.db.pool_connection() as conn:
        await conn.execute("VACUUM FULL")
        return {r["table"]: (r["heap"], r["toast"], r["indexes"]) for r in await conn.fetch(_SIZES)}


def payload(source_id: str, i: int, run: str) -> dict:
    return {
        "source_id": source_id,
        "first_name": "Ana",
        "last_name": "Lopez",
        "email": f"ana.{run}.{i}@example.com",
        "phone": f"602{i:07d}",
        "address": "1 Main St",
        "city": "Phoenix",
        "state": "AZ",
        "postal_code": CODES[i % len(CODES)],
        "consent": True,
        "consent_text": "I agree to be contacted by solar installers about my home.",
        "consent_certificate_url": f"https://cert.trustedform.com/{uuid.uuid4().hex}",
        "utm_source": "facebook",
        "utm_campaign": "solar-az-spring",
        "home_owner": "yes",
        "monthly_bill": "180",
    }


async def main(url: str, leads: int) -> None:
    configure_logging("WARNING", True)
    runtime = build_runtime(make_settings(url, db_pool_size=20), url)
    run = uuid.uuid4().hex[:6]
    with BuyerServer() as buyer:
        async with unit_of_work(runtime.db) as conn:
            world = await make_world(conn, rules={})
            for n in range(100):
                covering = n < 20
                await make_buyer(
                    conn,
                    world,
                    webhook_url=buyer.url(),
                    priority=n,
                    postal_codes=CODES if covering else [f"9{n:04d}"],
                    daily_cap=None if covering else 50,
                )
        before = await sizes(runtime)
        transport = httpx.ASGITransport(app=create_app(runtime))
        posted_bytes = 0
        async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:
            for start in range(0, leads, 100):
                for i in range(start, min(leads, start + 100)):
                    body = orjson.dumps(payload(str(world.source_id), i, run))
                    posted_bytes += len(body)
                    answer = await client.post(
                        "/api/leads", content=body, headers={"content-type": "application/json"}
                    )
                    assert answer.status_code == 201, answer.text
                await drain_jobs(runtime, concurrency=8)
        await drain_jobs(runtime, concurrency=8)
        async with runtime.db.pool_connection() as conn:
            delivered = await conn.fetchval("SELECT count(*) FROM leads WHERE status = 'delivered'")
        after = await sizes(runtime)
    await runtime.close()

    print(f"{leads} leads posted, {delivered} delivered; each decision traced 100 candidates")
    print(f"baseline: the posted JSON body {posted_bytes / leads:8.0f} B/lead")
    kept = transient = 0.0
    rows = []
    for table, (heap, toast, indexes) in after.items():
        was = before.get(table, (0, 0, 0))
        grown = [(a - b) / leads for a, b in zip((heap, toast, indexes), was, strict=True)]
        if sum(grown) > 1:
            rows.append((table, *grown))
            if table in TRANSIENT:
                transient += sum(grown)
            else:
                kept += sum(grown)
    for table, heap, toast, indexes in sorted(rows, key=lambda r: -(r[1] + r[2] + r[3])):
        print(
            f"  {table:<24} heap {heap:8.0f}  toast {toast:7.0f}  indexes {indexes:7.0f}"
            f"  = {heap + toast + indexes:8.0f} B/lead"
            + ("  (transient)" if table in TRANSIENT else "")
        )
    body = posted_bytes / leads
    print(f"kept per lead: {kept:8.0f} B ({kept / body:.1f}x the body)")
    print(f"with the job log of its first {7} days: {kept + transient:8.0f} B")
    verdict = "PASS" if kept <= BUDGET_BYTES else "FAIL"
    print(f"budget: kept <= {BUDGET_BYTES} B/lead: {verdict}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--leads", type=int, default=1000)
    database_url = recreate_database(server_url(), "leadflood_bench_storage")
    migrate.upgrade(database_url)
    asyncio.run(main(database_url, parser.parse_args().leads))
