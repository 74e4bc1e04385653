"""Shared outbound HTTP for provider clients: explicit timeouts, errors classified."""

from __future__ import annotations

from datetime import timedelta
from email.utils import parsedate_to_datetime

import httpx

from leadflood.core.providers import TransientProviderError


def client(
    base_url: str, timeout_s: float, headers: dict[str, str] | None = None
) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        base_url=base_url,
        timeout=httpx.Timeout(timeout_s, connect=min(5.0, timeout_s)),
        headers={"User-Agent": "leadflood", **(headers or {})},
    )


def retry_after(response: httpx.Response) -> timedelta | None:
    value = response.headers.get("retry-after")
    if not value:
        return None
    if value.strip().isdigit():
        return timedelta(seconds=int(value.strip()))
    try:
        from datetime import UTC, datetime

        return max(parsedate_to_datetime(value) - datetime.now(UTC), timedelta(0))
    except (TypeError, ValueError):
        return None


async def send(provider: str, http: httpx.AsyncClient, request: httpx.Request) -> httpx.Response:
    """Network failures and timeouts become transient provider errors."""
    try:
        return await http.send(request)
    except httpx.TimeoutException as exc:
        raise TransientProviderError(provider, "timeout", type(exc).__name__) from None
    except httpx.TransportError as exc:
        raise TransientProviderError(provider, "connection_error", type(exc).__name__) from None
