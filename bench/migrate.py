"""Time a fresh-database migration (and the no-op re-run) on a real PostgreSQL.

Baseline in the same run: creating the empty database itself, so the figure
isolates what our migrations cost. Target (DISTRIBUTION.md §9): fresh ≤ 3 s.

    python bench/migrate.py [--runs 5]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import summarize
from leadflood.core import migrate
from tests.pg import recreate_database, server_url


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    admin = server_url()
    create_ms: list[float] = []
    fresh_ms: list[float] = []
    rerun_ms: list[float] = []
    for i in range(args.runs):
        name = f"leadflood_bench_migrate_{i}"
        t0 = time.perf_counter()
        url = recreate_database(admin, name)
        create_ms.append((time.perf_counter() - t0) * 1000)
        t0 = time.perf_counter()
        migrate.upgrade(url)
        fresh_ms.append((time.perf_counter() - t0) * 1000)
        t0 = time.perf_counter()
        migrate.upgrade(url)
        rerun_ms.append((time.perf_counter() - t0) * 1000)
    summarize("baseline: CREATE DATABASE (empty)", create_ms)
    fresh = summarize("fresh database: migrate to head", fresh_ms)
    summarize("re-run at head (no-op)", rerun_ms)
    verdict = "PASS" if fresh["p95"] <= 3000 else "FAIL"
    print(f"target fresh migration p95 <= 3000 ms: {verdict} ({fresh['p95']:.0f} ms)")


if __name__ == "__main__":
    main()
