"""Analytics: a period summary for both halves of the product, and daily trends."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from leadflood.analytics import repository as repo
from leadflood.core.errors import BadRequest
from leadflood.core.uow import Tx

MAX_DAYS = 366


def period(since: date | None, until: date | None) -> tuple[date, date]:
    """Inclusive [since, until] in days; the last 30 days by default."""
    until = until or datetime.now(UTC).date()
    since = since or until - timedelta(days=29)
    if since > until:
        raise BadRequest("invalid_period", "from must not be after to")
    if (until - since).days >= MAX_DAYS:
        raise BadRequest("invalid_period", f"at most {MAX_DAYS} days")
    return since, until


def _bounds(since: date, until: date) -> tuple[datetime, datetime]:
    return (
        datetime.combine(since, time(0), UTC),
        datetime.combine(until + timedelta(days=1), time(0), UTC),
    )


async def summary(tx: Tx, since: date | None = None, until: date | None = None) -> dict:
    first, last = period(since, until)
    start, end = _bounds(first, last)
    counts = await repo.outreach_counts(tx, start, end)
    distribution = {
        d: await repo.distribution_by(tx, d, start, end) for d in ("source", "offer", "buyer")
    }
    enrolled = counts.enrolled
    return {
        "from": first,
        "to": last,
        "leads": {
            "total": counts.leads_total,
            "new": counts.leads_new,
            "enriched": counts.leads_enriched,
        },
        "messages": {
            k: getattr(counts, k) for k in ("sent", "delivered", "failed", "replied", "bounced")
        },
        "sequences": {
            "enrolled": enrolled,
            "active": counts.active,
            "completed": counts.completed,
            "reply_rate": round(counts.enrollments_replied / enrolled, 4) if enrolled else 0.0,
        },
        "distribution": {
            "totals": {
                k: sum(getattr(row, k) for row in distribution["source"])
                for k in ("received", "rejected", "routed", "delivered", "unsold")
            },
            "by_source": distribution["source"],
            "by_offer": distribution["offer"],
            "by_buyer": distribution["buyer"],
        },
    }


async def trends(
    tx: Tx,
    metric: str,
    since: date | None = None,
    until: date | None = None,
    tz: str = "UTC",
) -> dict[str, Any]:
    if metric not in repo.TREND_METRICS:
        raise BadRequest("unknown_metric", f"metric must be one of {', '.join(repo.TREND_METRICS)}")
    first, last = period(since, until)
    counts = await repo.daily(tx, metric, first, last, tz)
    days = [first + timedelta(days=n) for n in range((last - first).days + 1)]
    return {
        "metric": metric,
        "from": first,
        "to": last,
        "points": [{"day": day, "value": counts.get(day, 0)} for day in days],
    }
