"""Outcome classification of a buyer's answer (DISTRIBUTION.md §7); the retry schedule is
a `core.retry.RetryPolicy` built from Settings.delivery_retry_schedule_s."""

from __future__ import annotations

from datetime import timedelta

from leadflood.core.providers import classify_status

__all__ = ["NOT_DUE_TOLERANCE", "classify_status"]

# A job arriving this much before its delivery's next attempt is an early duplicate.
NOT_DUE_TOLERANCE = timedelta(seconds=1)
