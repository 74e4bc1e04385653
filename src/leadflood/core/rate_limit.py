"""A global request rate limit for the user-facing API (OUTREACH.md security).

Token bucket per client address, per process. It applies to `/v1/` only: sources post
leads to `/api/leads` at rates the distribution side is built to absorb, and their
abuse is handled by API keys, not by a shared per-address budget. Exceeding the budget
answers 429 `rate_limited` with Retry-After.
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict

from starlette.types import ASGIApp, Receive, Scope, Send

from leadflood.core.errors import error_response

MAX_CLIENTS = 10_000  # buckets kept; the least recently seen are forgotten first


class RateLimitMiddleware:
    def __init__(self, app: ASGIApp, per_minute: int, prefix: str = "/v1/") -> None:
        self.app = app
        self.capacity = float(per_minute)
        self.refill_per_s = per_minute / 60.0
        self.prefix = prefix
        self.buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()

    def _take(self, client: str, now: float) -> float:
        """0 when allowed, else seconds until a token is available."""
        tokens, at = self.buckets.pop(client, (self.capacity, now))
        tokens = min(self.capacity, tokens + (now - at) * self.refill_per_s)
        allowed = tokens >= 1
        self.buckets[client] = (tokens - 1 if allowed else tokens, now)
        if len(self.buckets) > MAX_CLIENTS:
            self.buckets.popitem(last=False)
        return 0.0 if allowed else (1 - tokens) / self.refill_per_s

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] != "http"
            or self.capacity <= 0
            or not scope["path"].startswith(self.prefix)
        ):
            await self.app(scope, receive, send)
            return
        client = (scope.get("client") or ("unknown", 0))[0]
        wait = self._take(client, time.monotonic())
        if wait > 0:
            response = error_response(
                429,
                "rate_limited",
                "too many requests; slow down",
                {"retry_after_s": math.ceil(wait)},
                {"Retry-After": str(math.ceil(wait))},
            )
            await response(scope, receive, send)
            return
        await self.app(scope, receive, send)
