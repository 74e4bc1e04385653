"""Shared benchmark helpers: percentiles and a table row printer."""

from __future__ import annotations

import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def percentile(samples: list[float], p: float) -> float:
    if not samples:
        return float("nan")
    ordered = sorted(samples)
    k = (len(ordered) - 1) * p / 100
    lo, hi = int(k), min(int(k) + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


def summarize(label: str, samples_ms: list[float], wall_s: float | None = None) -> dict:
    row = {
        "label": label,
        "n": len(samples_ms),
        "p50": percentile(samples_ms, 50),
        "p95": percentile(samples_ms, 95),
        "p99": percentile(samples_ms, 99),
        "mean": statistics.fmean(samples_ms) if samples_ms else float("nan"),
        "throughput": (len(samples_ms) / wall_s) if wall_s else float("nan"),
    }
    print(
        f"{label:<44} n={row['n']:>6}  p50={row['p50']:8.2f}ms  p95={row['p95']:8.2f}ms  "
        f"p99={row['p99']:8.2f}ms  throughput={row['throughput']:9.1f}/s",
        flush=True,
    )
    return row


def fresh_database_and_buyer(name: str) -> tuple[str, int, int, subprocess.Popen]:
    """A migrated database of its own, a buyer endpoint process and a free port for the
    server: (database url, buyer port, server port, buyer process)."""
    from leadflood.core import migrate
    from tests.live import free_port
    from tests.pg import recreate_database, server_url

    url = recreate_database(server_url(), name)
    migrate.upgrade(url)
    buyer_port, port = free_port(), free_port()
    buyer = subprocess.Popen(
        [sys.executable, str(ROOT / "bench" / "buyer_app.py"), str(buyer_port)]
    )
    return url, buyer_port, port, buyer
