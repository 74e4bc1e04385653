"""Routing benchmark: RoutingService on 1,000 buyers and 10,000 service-area rows.

Layout: 10 markets x 2 offers (priority and weighted policies); 100 buyers per market,
each enrolled in both offers of its market with caps and (for a third) a schedule,
each covering 10 of its market's 50 postal codes (10,000 rows). Leads are validated
leads spread over all offers and postal codes.

Measures 1,000 sequential decisions and 500 decisions run 50 at a time; prints
p50/p95/p99, decisions/s and SQL statements per decision. Same-run baseline: one
primary-key SELECT round trip on the same pool. Target (DISTRIBUTION.md §9):
p95 ≤ 10 ms, ≤ 4 queries per decision.

    python bench/route.py
"""

from __future__ import annotations

import asyncio
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import summarize
from leadflood.core import migrate
from leadflood.core.db import Database
from leadflood.routing.tasks import Router
from tests.pg import recreate_database, server_url

MARKETS, BUYERS_PER_MARKET, CODES_PER_MARKET, CODES_PER_BUYER = 10, 100, 50, 10
SEQUENTIAL, CONCURRENT, BATCH = 1000, 500, 50


async def build(db: Database) -> list:
    rnd = random.Random(7)
    async with db.pool_connection() as c:
        vp = await c.fetchval("INSERT INTO validation_policies (name) VALUES ('v') RETURNING id")
        rp_priority = await c.fetchval(
            "INSERT INTO routing_policies (name, strategy) VALUES ('p', 'priority') RETURNING id"
        )
        rp_weighted = await c.fetchval(
            "INSERT INTO routing_policies (name, strategy) VALUES ('w', 'weighted') RETURNING id"
        )
        vertical_a = await c.fetchval(
            "INSERT INTO verticals (slug, name) VALUES ('solar', 'Solar') RETURNING id"
        )
        vertical_b = await c.fetchval(
            "INSERT INTO verticals (slug, name) VALUES ('roof', 'Roof') RETURNING id"
        )
        offers = []
        for m in range(MARKETS):
            market = await c.fetchval(
                "INSERT INTO markets (slug, name, timezone) VALUES ($1, $1, 'America/Chicago') "
                "RETURNING id",
                f"m{m}",
            )
            codes = [f"{60000 + m * 100 + i}" for i in range(CODES_PER_MARKET)]
            market_offers = []
            for vertical, rp in ((vertical_a, rp_priority), (vertical_b, rp_weighted)):
                offer = await c.fetchval(
                    "INSERT INTO offers (slug, name, market_id, vertical_id, "
                    "validation_policy_id, routing_policy_id) VALUES ($1, $1, $2, $3, $4, $5) "
                    "RETURNING id",
                    f"o{m}-{vertical}",
                    market,
                    vertical,
                    vp,
                    rp,
                )
                source = await c.fetchval(
                    "INSERT INTO sources (name, offer_id, source_key) VALUES ($1, $2, $1) "
                    "RETURNING id",
                    f"s{m}-{vertical}",
                    offer,
                )
                market_offers.append(offer)
                offers.append((offer, market, vertical, source, codes))
            for b in range(BUYERS_PER_MARKET):
                schedule = (
                    (
                        '{"mon": [["00:00","24:00"]], "tue": [["00:00","24:00"]], '
                        '"wed": [["00:00","24:00"]], "thu": [["00:00","24:00"]], '
                        '"fri": [["00:00","24:00"]], "sat": [["00:00","24:00"]], '
                        '"sun": [["00:00","24:00"]]}'
                    )
                    if b % 3 == 0
                    else "{}"
                )
                buyer = await c.fetchval(
                    "INSERT INTO buyers (name, timezone, webhook_url, schedule, daily_cap, "
                    "hourly_cap, payment_method, balance_cents) VALUES ($1, 'America/Chicago', "
                    "'http://127.0.0.1:9/x', $2::jsonb, 100000, 10000, $3, 10000000) "
                    "RETURNING id",
                    f"b{m}-{b}",
                    schedule,
                    "prepaid" if b % 2 else "ach",
                )
                await c.executemany(
                    "INSERT INTO buyer_offers (buyer_id, offer_id, priority, weight, "
                    "price_cents, daily_cap) VALUES ($1, $2, $3, $4, 2500, 100000)",
                    [(buyer, o, rnd.randint(1, 10), rnd.randint(1, 5)) for o in market_offers],
                )
                await c.executemany(
                    "INSERT INTO buyer_service_areas (buyer_id, market_id, postal_code) "
                    "VALUES ($1, $2, $3)",
                    [(buyer, market, code) for code in rnd.sample(codes, CODES_PER_BUYER)],
                )
        leads = []
        rows = []
        for i in range(SEQUENTIAL + CONCURRENT):
            offer, market, vertical, source, codes = rnd.choice(offers)
            rows.append((source, offer, market, vertical, f"bench-{i}", rnd.choice(codes)))
        for row in rows:
            leads.append(
                await c.fetchval(
                    "INSERT INTO leads (source_id, offer_id, market_id, vertical_id, "
                    "idempotency_key, postal_code, status) VALUES ($1, $2, $3, $4, $5, $6, "
                    "'validated') RETURNING id",
                    *row,
                )
            )
        # Measure the steady state, not the bulk load's autovacuum and checkpoint.
        await c.execute("VACUUM ANALYZE")
        await c.execute("CHECKPOINT")
        counts = await c.fetchrow(
            "SELECT (SELECT count(*) FROM buyers) AS buyers, "
            "(SELECT count(*) FROM buyer_service_areas) AS areas"
        )
        print(
            f"dataset: {counts['buyers']} buyers, {counts['areas']} service-area rows, "
            f"{len(offers)} offers, {len(leads)} validated leads"
        )
    return leads


async def sample_waits(db: Database, into: dict[str, int]) -> None:
    """pg_stat_activity every 5 ms: what the other sessions of this database wait on."""
    async with db.pool_connection() as c:
        while True:
            for row in await c.fetch(
                "SELECT coalesce(wait_event_type || ':' || wait_event, state) AS w, "
                "left(query, 40) AS q FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid() "
                "AND state <> 'idle'"
            ):
                key = f"{row['w']} | {row['q']}"
                into[key] = into.get(key, 0) + 1
            await asyncio.sleep(0.005)


async def main(url: str) -> None:
    db = Database(url, pool_size=60)
    leads = await build(db)
    # A serving process warms its pool before traffic (decision 0011); so does the bench,
    # or the concurrent phase measures 50 connections' setup and type introspection.
    await db.warm_up(55)
    service = Router(db)

    floor: list[float] = []
    async with db.pool_connection() as c:
        for lead in leads[:SEQUENTIAL]:
            t0 = time.perf_counter()
            await c.fetchrow("SELECT id, status FROM leads WHERE id = $1", lead)
            floor.append((time.perf_counter() - t0) * 1000)
    summarize("baseline: one primary-key SELECT", floor, sum(floor) / 1000)

    samples, statements, outcomes = [], [], {}
    started = time.perf_counter()
    for lead in leads[:SEQUENTIAL]:
        t0 = time.perf_counter()
        result = await service.route(lead)
        samples.append((time.perf_counter() - t0) * 1000)
        statements.append(result.statements)
        outcomes[result.outcome] = outcomes.get(result.outcome, 0) + 1
    seq = summarize("routing: 1,000 sequential decisions", samples, time.perf_counter() - started)

    concurrent: list[float] = []
    waits: dict[str, int] = {}
    sampling = asyncio.create_task(sample_waits(db, waits))
    started = time.perf_counter()
    rest = leads[SEQUENTIAL:]
    for i in range(0, len(rest), BATCH):

        async def timed(lead):
            t0 = time.perf_counter()
            result = await service.route(lead)
            concurrent.append((time.perf_counter() - t0) * 1000)
            statements.append(result.statements)
            outcomes[result.outcome] = outcomes.get(result.outcome, 0) + 1

        await asyncio.gather(*(timed(lead) for lead in rest[i : i + BATCH]))
    summarize("routing: 500 decisions, 50 concurrent", concurrent, time.perf_counter() - started)
    sampling.cancel()
    top = sorted(waits.items(), key=lambda kv: -kv[1])[:12]
    print("what the routing sessions waited on (samples every 5 ms):", dict(top))
    await db.dispose()

    per_decision = sum(statements) / len(statements)
    print(f"outcomes: {outcomes}")
    print(
        f"SQL statements per decision: mean {per_decision:.2f}, max {max(statements)} "
        "(each statement is its own transaction; no BEGIN/COMMIT)"
    )
    print(
        f"target sequential p95 <= 10 ms: {'PASS' if seq['p95'] <= 10 else 'FAIL'} "
        f"({seq['p95']:.2f} ms); <= 4 queries: {'PASS' if max(statements) <= 4 else 'FAIL'}"
    )


if __name__ == "__main__":
    database_url = recreate_database(server_url(), "leadflood_bench_route")
    migrate.upgrade(database_url)
    asyncio.run(main(database_url))
