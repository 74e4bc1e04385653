"""Retry schedule and outcome classification (DISTRIBUTION.md §7)."""

from __future__ import annotations

from datetime import timedelta

# The default retry schedule; operators set their own (Settings.delivery_retry_schedule_s).
DELAYS = (timedelta(seconds=30), timedelta(minutes=2), timedelta(minutes=10), timedelta(minutes=30))
RETRY_AFTER_CAP = timedelta(hours=1)
RETRYABLE_STATUSES = frozenset({408, 425, 429})
# A job arriving this much before its delivery's next attempt is an early duplicate.
NOT_DUE_TOLERANCE = timedelta(seconds=1)


def classify_status(status: int) -> str:
    if 200 <= status < 300:
        return "success"
    if status in RETRYABLE_STATUSES or status >= 500:
        return "retryable_error"
    return "permanent_error"


def schedule_from(seconds: list[float] | tuple[float, ...]) -> tuple[timedelta, ...]:
    return tuple(timedelta(seconds=s) for s in seconds)


def next_delay(
    attempt_no: int,
    retry_after: timedelta | None = None,
    delays: tuple[timedelta, ...] = DELAYS,
) -> timedelta | None:
    """Delay before the next attempt after `attempt_no` failed retryably; None = exhausted.

    A round has len(delays) + 1 attempts: the first, then one after each delay.
    """
    if attempt_no > len(delays):
        return None
    delay = delays[attempt_no - 1]
    if retry_after is not None:
        delay = max(delay, min(retry_after, RETRY_AFTER_CAP))
    return delay
