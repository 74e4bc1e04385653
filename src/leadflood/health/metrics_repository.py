"""The system's state for /metrics, read from the database at scrape time: what every
process (serve, workers, on any machine) did is in the tables, so one scrape sees it all."""

from __future__ import annotations

from dataclasses import dataclass

from leadflood.core.uow import Conn


@dataclass(frozen=True, slots=True)
class Labeled:
    """One sample: its labels (in the metric's label order) and value."""

    labels: tuple[str, ...]
    value: float


_JOBS = """
SELECT entrypoint, status::text, count(*)::float8 FROM pgqueuer
WHERE status IN ('queued', 'picked') GROUP BY 1, 2
"""
_OLDEST = """
SELECT entrypoint, extract(epoch FROM now() - min(execute_after))::float8 FROM pgqueuer
WHERE status = 'queued' AND execute_after <= now() GROUP BY 1
"""
_FAILED = """
SELECT entrypoint, count(*)::float8 FROM pgqueuer_log
WHERE status = 'exception' AND created > now() - interval '1 hour' GROUP BY 1
"""
_LEADS = """
SELECT status::text, count(*)::float8 FROM leads
WHERE created_at > now() - interval '1 hour' GROUP BY 1
"""
# Each stage's latency over the leads that passed it in the last hour.
_STAGES = """
WITH recent AS (
    SELECT created_at, validated_at, routed_at, delivered_at FROM leads
    WHERE created_at > now() - interval '1 hour'
), spans AS (
    SELECT 'validated' AS stage, extract(epoch FROM validated_at - created_at) AS s
    FROM recent WHERE validated_at IS NOT NULL
    UNION ALL
    SELECT 'routed', extract(epoch FROM routed_at - coalesce(validated_at, created_at))
    FROM recent WHERE routed_at IS NOT NULL
    UNION ALL
    SELECT 'delivered', extract(epoch FROM delivered_at - routed_at)
    FROM recent WHERE delivered_at IS NOT NULL AND routed_at IS NOT NULL
), quantiles AS (
    -- One sort per stage for the three quantiles.
    SELECT stage, percentile_cont(ARRAY[0.5, 0.95, 0.99]) WITHIN GROUP (ORDER BY s) AS v
    FROM spans GROUP BY stage
)
SELECT stage, q::text, v[i]::float8
FROM quantiles, unnest(ARRAY[0.5, 0.95, 0.99]) WITH ORDINALITY AS t(q, i)
"""
_ATTEMPTS = """
SELECT a.outcome::text, coalesce(b.name, ''), count(*)::float8
FROM delivery_attempts a LEFT JOIN buyers b ON b.id = a.buyer_id
WHERE a.started_at > now() - interval '5 minutes' AND a.outcome IS NOT NULL
GROUP BY 1, 2
"""
_PAUSED = "SELECT count(*)::float8 FROM buyers WHERE status = 'paused'"
_QUOTAS = """
SELECT provider, (retry_at IS NULL OR retry_at > now())::int::float8
FROM outreach.provider_quotas
"""
_MESSAGES = """
SELECT channel, status, count(*)::float8 FROM outreach.messages
WHERE created_at > now() - interval '1 hour' GROUP BY 1, 2
"""


@dataclass(frozen=True, slots=True)
class Snapshot:
    jobs: list[Labeled]  # (job, state)
    oldest_queued_s: list[Labeled]  # (job,)
    failed_last_hour: list[Labeled]  # (job,)
    leads_1h: list[Labeled]  # (status,)
    stage_latency_s: list[Labeled]  # (stage, quantile)
    attempts_5m: list[Labeled]  # (outcome, buyer)
    buyers_paused: float
    quota_exhausted: list[Labeled]  # (provider,)
    messages_1h: list[Labeled]  # (channel, status)


async def snapshot(conn: Conn) -> Snapshot:
    async def labeled(sql: str) -> list[Labeled]:
        return [Labeled(tuple(str(v) for v in r[:-1]), r[-1]) for r in await conn.fetch(sql)]

    return Snapshot(
        jobs=await labeled(_JOBS),
        oldest_queued_s=await labeled(_OLDEST),
        failed_last_hour=await labeled(_FAILED),
        leads_1h=await labeled(_LEADS),
        stage_latency_s=await labeled(_STAGES),
        attempts_5m=await labeled(_ATTEMPTS),
        buyers_paused=await conn.fetchval(_PAUSED),
        quota_exhausted=await labeled(_QUOTAS),
        messages_1h=await labeled(_MESSAGES),
    )
