"""Hunter: /v2/email-finder, /v2/email-verifier, /v2/domain-search (api_key parameter).

Errors arrive as {"errors": [{"id", "code", "details"}]}. Hunter's own meanings:
403 is the short rate limit (retry), 429 means the monthly credits are used up (do
not retry), 451 means the person asked not to be processed (drop the data), and the
verifier answers 202 while a verification is still running (ask again later).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import httpx

from leadflood.core.providers import (
    PermanentProviderError,
    ProviderError,
    TransientProviderError,
    excerpt,
    raise_for_status,
)
from leadflood.integrations import http

PROVIDER = "hunter"


def _error(response: httpx.Response) -> tuple[str, str]:
    try:
        errors = response.json().get("errors") or []
        first = errors[0] if errors else {}
        return str(first.get("id") or "error"), excerpt(str(first.get("details") or ""))
    except (ValueError, AttributeError, IndexError):
        return "error", excerpt(response.text)


def _check(response: httpx.Response) -> dict[str, Any]:
    status = response.status_code
    if status == 202 or status == 222:
        # 202: verification still running; 222: the mail server did not answer in time.
        raise TransientProviderError(
            PROVIDER,
            "verification_pending",
            "verification in progress",
            status=status,
            retry_after=http.retry_after(response) or timedelta(seconds=10),
        )
    if 200 <= status < 300:
        try:
            return response.json().get("data") or {}
        except (ValueError, AttributeError):
            raise TransientProviderError(
                PROVIDER, "malformed_response", excerpt(response.text), status=status
            ) from None
    error_id, details = _error(response)
    message = f"{error_id}: {details}" if details else error_id
    raise_for_status(
        PROVIDER,
        status,
        message,
        retry_after=http.retry_after(response) or timedelta(seconds=2),
        special=_HUNTER_STATUSES,
    )
    raise AssertionError("unreachable: a non-2xx status always raises")


# Hunter's documented meanings that differ from the shared rule.
_HUNTER_STATUSES: dict[int, tuple[type[ProviderError], str]] = {
    403: (TransientProviderError, "rate_limited"),  # the short per-second/minute limit
    429: (PermanentProviderError, "credits_exhausted"),  # the monthly quota
    451: (PermanentProviderError, "opted_out"),
}


class HunterClient:
    def __init__(self, api_key: str, base_url: str, timeout_s: float = 15.0) -> None:
        self._key = api_key
        self._http = http.client(base_url, timeout_s)

    async def close(self) -> None:
        await self._http.aclose()

    async def _get(self, path: str, params: dict[str, Any]) -> dict[str, Any]:
        query = {k: v for k, v in params.items() if v not in (None, "")} | {"api_key": self._key}
        request = self._http.build_request("GET", path, params=query)
        return _check(await http.send(PROVIDER, self._http, request))

    async def email_finder(
        self, *, domain: str, first_name: str | None, last_name: str | None
    ) -> dict[str, Any]:
        return await self._get(
            "/v2/email-finder",
            {"domain": domain, "first_name": first_name, "last_name": last_name},
        )

    async def email_verifier(self, email: str) -> dict[str, Any]:
        return await self._get("/v2/email-verifier", {"email": email})

    async def domain_search(self, domain: str, limit: int = 10) -> dict[str, Any]:
        return await self._get("/v2/domain-search", {"domain": domain, "limit": limit})
