"""Hunter: /v2/email-finder, /v2/email-verifier and /v2/companies/find.

The key travels in the `X-API-KEY` header (never in a URL, where proxies and access logs
keep it). Calls are paced within Hunter's documented limits per process (the finder and
company enrichment 15 a second and 500 a minute, the verifier 10 and 300).

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
from leadflood.integrations.pacing import Pacer

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


# Hunter's documented limits per endpoint: (per second, per minute).
_LIMITS = {
    "/v2/email-finder": (15, 500),
    "/v2/email-verifier": (10, 300),
    "/v2/companies/find": (15, 500),
}
PACERS: dict[str, Pacer] = {}


def _pacer(path: str) -> Pacer:
    if path not in PACERS:
        per_second, per_minute = _LIMITS[path]
        PACERS[path] = Pacer(((per_second, 1.0), (per_minute, 60.0)))
    return PACERS[path]


class HunterClient:
    def __init__(self, api_key: str, base_url: str, timeout_s: float = 15.0) -> None:
        self._http = http.client(base_url, timeout_s, {"X-API-KEY": api_key})

    async def close(self) -> None:
        await self._http.aclose()

    async def _get(self, path: str, params: dict[str, Any]) -> dict[str, Any]:
        query = {k: v for k, v in params.items() if v not in (None, "")}
        request = self._http.build_request("GET", path, params=query)
        await _pacer(path).wait()
        return _check(await http.send(PROVIDER, self._http, request))

    async def email_finder(
        self,
        *,
        domain: str | None = None,
        company: str | None = None,
        first_name: str | None = None,
        last_name: str | None = None,
        full_name: str | None = None,
    ) -> dict[str, Any]:
        """The finder takes a domain or a company name, and a first and last name or a
        full name; the answer carries its own verification when Hunter made one."""
        return await self._get(
            "/v2/email-finder",
            {
                "domain": domain,
                "company": None if domain else company,
                "first_name": first_name,
                "last_name": last_name,
                "full_name": None if last_name else full_name,
            },
        )

    async def company(self, domain: str) -> dict[str, Any]:
        """Company Enrichment: name, category (industry), metrics (employees), geo."""
        return await self._get("/v2/companies/find", {"domain": domain})

    async def email_verifier(self, email: str) -> dict[str, Any]:
        return await self._get("/v2/email-verifier", {"email": email})
