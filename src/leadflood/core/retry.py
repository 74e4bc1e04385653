"""The one retry schedule type: jobs, tracked jobs and buyer deliveries all use it."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import timedelta

# A partner's Retry-After is honoured up to this long; longer would strand the work.
RETRY_AFTER_CAP = timedelta(hours=1)


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    max_attempts: int
    delays: tuple[timedelta, ...] = ()  # before attempt 2, 3, …; the last one repeats

    @classmethod
    def from_seconds(cls, seconds: Iterable[float]) -> RetryPolicy:
        """A schedule of delays: one first attempt, then one after each delay."""
        delays = tuple(timedelta(seconds=s) for s in seconds)
        return cls(max_attempts=len(delays) + 1, delays=delays)

    def delay_after(self, attempt: int, retry_after: timedelta | None = None) -> timedelta | None:
        """Delay before the next attempt after `attempt` failed retryably; None when it
        was the last. A longer Retry-After from the partner wins, within the cap."""
        if attempt >= self.max_attempts or not self.delays:
            return None
        delay = self.delays[min(attempt - 1, len(self.delays) - 1)]
        if retry_after is not None:
            delay = max(delay, min(retry_after, RETRY_AFTER_CAP))
        return delay

    @property
    def first_delay(self) -> timedelta:
        return self.delays[0] if self.delays else timedelta(0)


# Periodic and self-healing jobs: the next run is the retry.
NO_RETRY = RetryPolicy(max_attempts=1)
# Pipeline stages: an unexpected exception (a bug, a lost connection) is retried with
# pgqueuer's backoff from the first delay.
STAGE_RETRY = RetryPolicy(max_attempts=5, delays=(timedelta(seconds=5),))
