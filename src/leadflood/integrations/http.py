"""Shared outbound HTTP for provider clients: explicit timeouts, errors classified."""

from __future__ import annotations

from datetime import timedelta

import httpx

from leadflood.core.providers import TransientProviderError
from leadflood.core.retry_after import parse_retry_after
from leadflood.health.metrics import PROVIDER_CALLS


def client(
    base_url: str, timeout_s: float, headers: dict[str, str] | None = None
) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        base_url=base_url,
        timeout=httpx.Timeout(timeout_s, connect=min(5.0, timeout_s)),
        headers={"User-Agent": "leadflood", **(headers or {})},
    )


def retry_after(response: httpx.Response) -> timedelta | None:
    return parse_retry_after(response.headers.get("retry-after"))


async def send(provider: str, http: httpx.AsyncClient, request: httpx.Request) -> httpx.Response:
    """Network failures and timeouts become transient provider errors. Every call is
    counted by provider and outcome (its HTTP status class, or the failure)."""
    try:
        response = await http.send(request)
    except httpx.TimeoutException as exc:
        PROVIDER_CALLS.labels(provider, "timeout").inc()
        raise TransientProviderError(provider, "timeout", type(exc).__name__) from None
    except httpx.TransportError as exc:
        PROVIDER_CALLS.labels(provider, "connection_error").inc()
        raise TransientProviderError(provider, "connection_error", type(exc).__name__) from None
    PROVIDER_CALLS.labels(provider, f"http_{response.status_code // 100}xx").inc()
    return response
