"""Prometheus metrics (issue 19, decision 0023).

Two kinds, one page:
- this process's own, kept in memory as it works: HTTP requests by route template, method
  and status with a latency histogram; deliveries by outcome and buyer, provider calls by
  provider and outcome, and lead stage transitions when this process runs those jobs;
- the system's state, read from the database at each scrape (`metrics_repository`): jobs
  queued and running by kind, the oldest due job's age, failures in the last hour, leads
  by status, stage latencies, recent delivery attempts by outcome and buyer, paused
  buyers, exhausted provider quotas, messages by channel and status. Whatever process did
  the work, its result is in the tables, so a worker on another machine needs no scrape
  of its own for the system's health.
"""

from __future__ import annotations

from collections.abc import MutableMapping
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily

from leadflood.health.metrics_repository import Snapshot

PROCESS = CollectorRegistry(auto_describe=True)

HTTP_REQUESTS = Counter(
    "leadflood_http_requests",
    "HTTP requests served by this process",
    ["route", "method", "status"],
    registry=PROCESS,
)
HTTP_LATENCY = Histogram(
    "leadflood_http_request_duration_seconds",
    "Time to serve an HTTP request",
    ["route", "method"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
    registry=PROCESS,
)
DELIVERY_ATTEMPTS = Counter(
    "leadflood_delivery_attempts",
    "Delivery attempts recorded by this process",
    ["outcome", "buyer_id"],
    registry=PROCESS,
)
PROVIDER_CALLS = Counter(
    "leadflood_provider_calls",
    "Calls to outreach providers from this process",
    ["provider", "outcome"],
    registry=PROCESS,
)
STAGE_TRANSITIONS = Counter(
    "leadflood_lead_transitions",
    "Lead stage transitions made by this process",
    ["stage"],
    registry=PROCESS,
)
PINGS = Histogram(
    "leadflood_ping_duration_seconds",
    "Time to answer a ping (the whole auction)",
    buckets=(0.01, 0.025, 0.05, 0.1, 0.2, 0.3, 0.5, 1.0, 2.5),
    registry=PROCESS,
)
UP = Gauge("leadflood_up", "1 while this process serves", registry=PROCESS)
UP.set(1)


def _family(name: str, doc: str, labels: list[str], samples) -> GaugeMetricFamily:
    family = GaugeMetricFamily(name, doc, labels=labels)
    for sample in samples:
        family.add_metric(list(sample.labels), sample.value)
    return family


def system_families(s: Snapshot) -> list[GaugeMetricFamily]:
    paused = GaugeMetricFamily("leadflood_buyers_paused", "Buyers paused now")
    paused.add_metric([], s.buyers_paused)
    return [
        _family("leadflood_jobs", "Jobs by kind and state", ["job", "state"], s.jobs),
        _family(
            "leadflood_job_oldest_queued_seconds",
            "Age of the oldest due job not yet taken, by kind",
            ["job"],
            s.oldest_queued_s,
        ),
        _family(
            "leadflood_jobs_failed_last_hour", "Job runs that raised", ["job"], s.failed_last_hour
        ),
        _family(
            "leadflood_leads_1h",
            "Leads received in the last hour by status",
            ["status"],
            s.leads_1h,
        ),
        _family(
            "leadflood_stage_latency_seconds",
            "Time to reach a stage, leads of the last hour",
            ["stage", "quantile"],
            s.stage_latency_s,
        ),
        _family(
            "leadflood_delivery_attempts_5m",
            "Delivery attempts finished in 5 minutes",
            ["outcome", "buyer"],
            s.attempts_5m,
        ),
        paused,
        _family(
            "leadflood_provider_quota_exhausted",
            "1 while a provider account's quota is used up",
            ["provider"],
            s.quota_exhausted,
        ),
        _family(
            "leadflood_messages_1h",
            "Outreach messages in 1 h",
            ["channel", "status"],
            s.messages_1h,
        ),
    ]


class _Fixed:
    """A collector over families already read (the scrape's snapshot)."""

    def __init__(self, families: list[GaugeMetricFamily]) -> None:
        self.families = families

    def collect(self):
        return iter(self.families)


def exposition(snapshot: Snapshot) -> bytes:
    system = CollectorRegistry(auto_describe=False)
    system.register(_Fixed(system_families(snapshot)))
    return generate_latest(PROCESS) + generate_latest(system)


def route_label(scope: MutableMapping[str, Any]) -> str:
    """The matched route's template (bounded cardinality), never the raw path."""
    route = scope.get("route")
    path = getattr(route, "path", None)
    if path:
        return path
    raw = scope.get("path", "")
    if raw.startswith("/api/leads"):
        return "/api/leads"  # the ingestion fast path skips the router
    return "unmatched"
