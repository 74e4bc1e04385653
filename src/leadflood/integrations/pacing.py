"""Client-side pacing within a provider's documented request limits.

A sliding window per limit (for example 15 a second and 500 a minute): a call waits
until every window has room, so a batch slows down instead of drawing the provider's
429s. Per process: each worker paces its own calls (a provider's 403/429 still retries).
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable


class Pacer:
    def __init__(
        self,
        limits: tuple[tuple[int, float], ...],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._limits = limits  # (calls, window seconds)
        self._clock = clock
        self._calls: deque[float] = deque()
        self._locks: dict[int, asyncio.Lock] = {}

    def delay(self) -> float:
        """Seconds until one more call fits every window (0 when it fits now)."""
        now = self._clock()
        longest = max(window for _, window in self._limits)
        while self._calls and now - self._calls[0] >= longest:
            self._calls.popleft()
        wait = 0.0
        for calls, window in self._limits:
            recent = [t for t in self._calls if now - t < window]
            if len(recent) >= calls:
                wait = max(wait, recent[-calls] + window - now)
        return wait

    def _lock(self) -> asyncio.Lock:
        # One lock per event loop: an asyncio.Lock is bound to the loop that first waits
        # on it, and a process-wide pacer outlives loops (each test runs its own).
        loop = id(asyncio.get_running_loop())
        if loop not in self._locks:
            self._locks = {loop: asyncio.Lock()}
        return self._locks[loop]

    async def wait(self) -> None:
        async with self._lock():
            while (pause := self.delay()) > 0:
                await asyncio.sleep(pause)
            self._calls.append(self._clock())
