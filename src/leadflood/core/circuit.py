"""Per-provider circuit breakers: after repeated failures, stop calling for a cool-down.

Process-local on purpose: each worker protects its own concurrency slots, needs no
coordination, and a fresh process probes the provider once before trusting it again.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta

from leadflood.core.providers import TransientProviderError


@dataclass
class CircuitBreaker:
    name: str
    failure_threshold: int = 5
    cooldown: timedelta = timedelta(seconds=30)
    clock: Callable[[], float] = time.monotonic
    failures: int = 0
    opened_at: float | None = None
    _probing: bool = field(default=False, repr=False)

    @property
    def state(self) -> str:
        if self.opened_at is None:
            return "closed"
        if self.clock() - self.opened_at >= self.cooldown.total_seconds():
            return "half_open"
        return "open"

    def before_call(self) -> None:
        state = self.state
        if state == "open" or (state == "half_open" and self._probing):
            assert self.opened_at is not None
            remaining = self.cooldown.total_seconds() - (self.clock() - self.opened_at)
            raise TransientProviderError(
                self.name,
                "circuit_open",
                f"{self.name} failed {self.failures} times in a row; pausing calls",
                retry_after=timedelta(seconds=max(1.0, remaining)),
            )
        if state == "half_open":
            self._probing = True  # one trial call; the rest wait for its verdict

    def record_success(self) -> None:
        self.failures, self.opened_at, self._probing = 0, None, False

    def record_failure(self) -> None:
        self.failures += 1
        self._probing = False
        if self.failures >= self.failure_threshold or self.opened_at is not None:
            self.opened_at = self.clock()


BREAKERS: dict[str, CircuitBreaker] = {}


def breaker(name: str) -> CircuitBreaker:
    if name not in BREAKERS:
        BREAKERS[name] = CircuitBreaker(name)
    return BREAKERS[name]
