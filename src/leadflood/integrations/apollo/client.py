"""Apollo: People API Search, then People Enrichment (x-api-key header).

`POST /api/v1/mixed_people/api_search` spends no credits and returns no email, phone or
full last name (`last_name_obfuscated`, `has_email` flags; `total_entries` top-level or in
a `pagination` object). `POST /api/v1/people/match?id=...` spends one credit and returns
the `person` with them. Both answer 429 with `Retry-After` or the `x-*-requests-left`
headers, and 401/403/422 with `{"error": "..."}` or `{"message": "..."}`. Recorded
responses: tests/fixtures/providers/apollo.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import httpx
import orjson

from leadflood.core.providers import (
    TransientProviderError,
    excerpt,
    raise_for_status,
)
from leadflood.integrations import http

PROVIDER = "apollo"
SEARCH_PATH = "/api/v1/mixed_people/api_search"
MATCH_PATH = "/api/v1/people/match"
BULK_MATCH_PATH = "/api/v1/people/bulk_match"
BULK_MAX = 10  # people per bulk_match call, as Apollo documents
MAX_PER_PAGE = 100
FILTERS = (
    "person_titles",
    "person_seniorities",
    "person_locations",
    "organization_num_employees_ranges",
    "q_organization_domains_list",
    # Industries: the company's keyword tags, a filter of their own (any tag matches),
    # not words ANDed into q_keywords.
    "q_organization_keyword_tags",
    "q_keywords",
)
# Exhausted windows, longest first: how long to wait when Apollo does not say.
_WINDOWS = (
    ("x-daily-requests-left", timedelta(hours=1)),
    ("x-24-hour-requests-left", timedelta(hours=1)),
    ("x-hourly-requests-left", timedelta(minutes=10)),
    ("x-minute-requests-left", timedelta(minutes=1)),
)
# A wait this short is slept through inside the job; a longer one ends the attempt and
# the job retries after it.
MAX_INLINE_WAIT = timedelta(minutes=1)


@dataclass(frozen=True)
class ApolloPage:
    people: list[dict[str, Any]]
    page: int
    per_page: int
    total_entries: int | None
    total_pages: int | None
    requests_left: dict[str, int] = field(default_factory=dict)

    @property
    def has_more(self) -> bool:
        if self.total_pages is not None:
            return self.page < self.total_pages
        if self.total_entries is not None:
            return self.page * self.per_page < self.total_entries
        return len(self.people) >= self.per_page  # no pagination info: a full page may have more


def _message(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return excerpt(response.text or response.reason_phrase)
    if isinstance(body, dict):
        for key in ("error", "message", "errors"):
            if body.get(key):
                value = body[key]
                return excerpt(value if isinstance(value, str) else orjson.dumps(value).decode())
    return excerpt(response.text)


def _requests_left(response: httpx.Response) -> dict[str, int]:
    left = {}
    for name, value in response.headers.items():
        if name.lower().startswith("x-") and name.lower().endswith("requests-left"):
            try:
                left[name.lower()] = int(value)
            except ValueError:
                continue
    return left


class ApolloClient:
    def __init__(self, api_key: str, base_url: str, timeout_s: float = 15.0) -> None:
        self._http = http.client(
            base_url,
            timeout_s,
            {"x-api-key": api_key, "Content-Type": "application/json", "Cache-Control": "no-cache"},
        )
        self._blocked_until = 0.0

    async def close(self) -> None:
        await self._http.aclose()

    async def _send(self, request: httpx.Request) -> httpx.Response:
        """Send, first waiting out a window the previous answer said was used up (its
        `x-*-requests-left` header at 0), so the next call is not a certain 429."""
        wait = self._blocked_until - time.monotonic()
        if wait > 0:
            if wait > MAX_INLINE_WAIT.total_seconds():
                raise TransientProviderError(
                    PROVIDER,
                    "rate_limited",
                    "Apollo's request window is used up",
                    retry_after=timedelta(seconds=wait),
                )
            await asyncio.sleep(wait)
        response = await http.send(PROVIDER, self._http, request)
        left = _requests_left(response)
        spent = [w for header, w in _WINDOWS if left.get(header) == 0]
        if spent and response.status_code < 400:
            self._blocked_until = time.monotonic() + max(spent).total_seconds()
        return response

    async def search_people(
        self, filters: dict[str, Any], page: int = 1, per_page: int = 25
    ) -> ApolloPage:
        unknown = set(filters) - set(FILTERS)
        if unknown:
            raise ValueError(f"unknown Apollo filters: {sorted(unknown)}")
        per_page = max(1, min(per_page, MAX_PER_PAGE))
        body = {k: v for k, v in filters.items() if v} | {"page": page, "per_page": per_page}
        request = self._http.build_request("POST", SEARCH_PATH, content=orjson.dumps(body))
        response = await self._send(request)
        data, left = _checked(response)
        people = data.get("people") or []
        pagination = data.get("pagination")
        pagination = pagination if isinstance(pagination, dict) else {}
        return ApolloPage(
            people=[p for p in people if isinstance(p, dict)] if isinstance(people, list) else [],
            page=_int(pagination.get("page")) or page,
            per_page=_int(pagination.get("per_page")) or per_page,
            total_entries=_int(pagination.get("total_entries", data.get("total_entries"))),
            total_pages=_int(pagination.get("total_pages")),
            requests_left=left,
        )

    async def match_person(self, apollo_id: str) -> dict[str, Any] | None:
        """People Enrichment by Apollo id (one credit); None when Apollo has no match.
        Personal emails and phone numbers stay unrevealed (they cost more and need a
        webhook)."""
        params = {
            "id": apollo_id,
            "reveal_personal_emails": "false",
            "reveal_phone_number": "false",
        }
        request = self._http.build_request("POST", MATCH_PATH, params=params)
        data, _ = _checked(await self._send(request))
        person = data.get("person")
        return person if isinstance(person, dict) else None

    async def bulk_match(self, apollo_ids: list[str]) -> list[dict[str, Any] | None]:
        """Bulk People Enrichment (one credit per match, up to 10 per call): each answer
        in the order asked, None for a miss (Apollo aligns `matches` with `details`)."""
        if not 1 <= len(apollo_ids) <= BULK_MAX:
            raise ValueError(f"bulk_match takes 1 to {BULK_MAX} people")
        params = {"reveal_personal_emails": "false", "reveal_phone_number": "false"}
        body = {"details": [{"id": i} for i in apollo_ids]}
        request = self._http.build_request(
            "POST", BULK_MATCH_PATH, params=params, content=orjson.dumps(body)
        )
        data, _ = _checked(await self._send(request))
        matches = data.get("matches")
        matches = matches if isinstance(matches, list) else []
        return [
            (matches[n] if n < len(matches) and isinstance(matches[n], dict) else None)
            for n in range(len(apollo_ids))
        ]


def _checked(response: httpx.Response) -> tuple[dict[str, Any], dict[str, int]]:
    """The JSON body of a successful answer and the requests left in each window; a
    429 waits out the exhausted window, other failures raise by their status."""
    left = _requests_left(response)
    wait = None
    if response.status_code == 429:
        wait = http.retry_after(response) or next(
            (w for h, w in _WINDOWS if left.get(h) == 0), timedelta(minutes=1)
        )
    raise_for_status(PROVIDER, response.status_code, _message(response), retry_after=wait)
    try:
        data = response.json()
    except ValueError:
        data = None
    if not isinstance(data, dict):
        raise TransientProviderError(
            PROVIDER, "malformed_response", excerpt(response.text), status=response.status_code
        )
    return data, left


def _int(value: Any) -> int | None:
    try:
        return int(value) if value is not None else None
    except (TypeError, ValueError):
        return None
