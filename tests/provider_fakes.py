"""Local fake provider servers speaking Apollo's and Hunter's documented shapes.

Each records the requests it received and answers from a script (status, body,
headers) or, with nothing scripted, from a small deterministic data set.
"""

from __future__ import annotations

import threading
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from tests.live import ThreadedServer


@dataclass
class Scripted:
    status: int
    body: Any
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class Seen:
    path: str
    headers: dict[str, str]
    query: dict[str, str]
    body: Any


class FakeProvider(ThreadedServer):
    def __init__(self, routes: list[Route]) -> None:
        self.scripts: dict[str, list[Scripted]] = defaultdict(list)
        self.seen: list[Seen] = []
        self._lock = threading.Lock()
        super().__init__(Starlette(routes=routes))

    def script(self, path: str, *replies: Scripted) -> None:
        with self._lock:
            self.scripts[path].extend(replies)

    def calls(self, path: str) -> list[Seen]:
        with self._lock:
            return [s for s in self.seen if s.path == path]

    async def _record(self, request: Request) -> tuple[Seen, Scripted | None]:
        raw = await request.body()
        seen = Seen(
            request.url.path,
            dict(request.headers),
            dict(request.query_params),
            orjson.loads(raw) if raw else None,
        )
        with self._lock:
            self.seen.append(seen)
            queue = self.scripts.get(request.url.path)
            return seen, queue.pop(0) if queue else None


def reply(scripted: Scripted) -> Response:
    return Response(
        orjson.dumps(scripted.body) if not isinstance(scripted.body, str) else scripted.body,
        status_code=scripted.status,
        media_type="application/json",
        headers=scripted.headers,
    )


FIXTURES = Path(__file__).parent / "fixtures" / "providers"


def fixture(provider: str, name: str) -> Any:
    """A recorded response body of the provider's documented shape (fixtures/providers)."""
    return orjson.loads((FIXTURES / provider / f"{name}.json").read_bytes())


# ---- Apollo --------------------------------------------------------------------------------

APOLLO_SEARCH = "/api/v1/mixed_people/api_search"
APOLLO_MATCH = "/api/v1/people/match"
APOLLO_BULK_MATCH = "/api/v1/people/bulk_match"


def apollo_person(n: int) -> dict[str, Any]:
    """Person n as the People API Search returns it: no email, an obfuscated last name."""
    template = fixture("apollo", "people_api_search")["people"]
    person = template[(n - 1) % len(template)]
    person.update(id=f"apollo-{n}", first_name=f"First{n}", last_name_obfuscated=f"La***{n}")
    person["organization"]["name"] = f"Acme {n % 3}"
    return person


def apollo_match(n: int) -> dict[str, Any]:
    """Person n as People Enrichment returns it: full name, email and company facts."""
    body = fixture("apollo", "people_match")
    person, domain = body["person"], f"acme{n % 3}.example"
    person.update(
        id=f"apollo-{n}",
        first_name=f"First{n}",
        last_name=f"Last{n}",
        name=f"First{n} Last{n}",
        email=f"first{n}.last{n}@{domain}",
        linkedin_url=f"http://www.linkedin.com/in/first{n}-last{n}",
    )
    person["organization"].update(
        name=f"Acme {n % 3}", primary_domain=domain, website_url=f"http://www.{domain}"
    )
    return body


class FakeApollo(FakeProvider):
    """Serves `total` people from the recorded Apollo responses: the search without
    contact data (`total_entries` at the top, as documented; `with_pagination` adds the
    `pagination` object older answers carried), People Enrichment by id with it."""

    def __init__(self, total: int = 5, with_pagination: bool = False) -> None:
        self.total = total
        self.with_pagination = with_pagination
        super().__init__(
            [
                Route(APOLLO_SEARCH, self._search, methods=["POST"]),
                Route(APOLLO_MATCH, self._match, methods=["POST"]),
                Route(APOLLO_BULK_MATCH, self._bulk_match, methods=["POST"]),
            ]
        )

    async def _guard(self, request: Request) -> tuple[Seen, Response | None]:
        seen, scripted = await self._record(request)
        if scripted:
            return seen, reply(scripted)
        if seen.headers.get("x-api-key") != "apollo-test-key":
            return seen, reply(Scripted(401, fixture("apollo", "error_invalid_key")))
        return seen, None

    async def _search(self, request: Request) -> Response:
        seen, early = await self._guard(request)
        if early:
            return early
        page, per_page = int(seen.body.get("page", 1)), int(seen.body.get("per_page", 10))
        people = [apollo_person(n) for n in range(1, self.total + 1)]
        body: dict[str, Any] = {
            "total_entries": self.total,
            "people": people[(page - 1) * per_page : page * per_page],
        }
        if self.with_pagination:
            body["pagination"] = {
                "page": page,
                "per_page": per_page,
                "total_entries": self.total,
                "total_pages": -(-self.total // per_page),
            }
        return reply(Scripted(200, body, {"x-minute-requests-left": "199"}))

    async def _match(self, request: Request) -> Response:
        seen, early = await self._guard(request)
        if early:
            return early
        apollo_id = seen.query.get("id", "")
        n = int(apollo_id.removeprefix("apollo-")) if apollo_id.startswith("apollo-") else 0
        if not 1 <= n <= self.total:
            return reply(Scripted(200, {"person": None}))
        return reply(Scripted(200, apollo_match(n), {"x-minute-requests-left": "198"}))

    async def _bulk_match(self, request: Request) -> Response:
        seen, early = await self._guard(request)
        if early:
            return early
        details = seen.body.get("details") or []
        if not 1 <= len(details) <= 10:
            return reply(Scripted(422, {"error": "details must have 1 to 10 entries"}))
        matches = []
        for detail in details:
            apollo_id = str(detail.get("id", ""))
            n = int(apollo_id.removeprefix("apollo-")) if apollo_id.startswith("apollo-") else 0
            matches.append(apollo_match(n)["person"] if 1 <= n <= self.total else None)
        found = sum(1 for m in matches if m)
        body = {
            **fixture("apollo", "people_bulk_match"),
            "total_requested_enrichments": len(details),
            "unique_enriched_records": found,
            "missing_records": len(details) - found,
            "credits_consumed": found,
            "matches": matches,
        }
        return reply(Scripted(200, body, {"x-minute-requests-left": "197"}))


# ---- Hunter --------------------------------------------------------------------------------


class FakeHunter(FakeProvider):
    """Answers from the recorded Hunter responses, with the request's own person, domain
    or address put in; an address starting with "bounce" verifies as invalid."""

    def __init__(self) -> None:
        super().__init__(
            [
                Route("/v2/email-finder", self._finder),
                Route("/v2/email-verifier", self._verifier),
                Route("/v2/companies/find", self._company),
                Route("/v2/domain-search", self._domain),
            ]
        )

    async def _guard(self, request: Request) -> tuple[Seen, Response | None]:
        seen, scripted = await self._record(request)
        if scripted:
            return seen, reply(scripted)
        key = seen.headers.get("x-api-key") or seen.query.get("api_key")
        if key != "hunter-test-key":
            return seen, reply(Scripted(401, fixture("hunter", "error_authentication_failed")))
        return seen, None

    async def _finder(self, request: Request) -> Response:
        seen, early = await self._guard(request)
        if early:
            return early
        q = seen.query
        body = fixture("hunter", "email_finder")
        first, last = q.get("first_name", ""), q.get("last_name", "")
        # By company name, Hunter finds the domain itself.
        domain = (
            q.get("domain") or "".join(c for c in q["company"].lower() if c.isalnum()) + ".example"
        )
        body["data"].update(
            first_name=first,
            last_name=last,
            domain=domain,
            email=f"{first.lower()}.{last.lower()}@{domain}",
        )
        body["meta"]["params"].update(first_name=first, last_name=last, domain=domain)
        return reply(Scripted(200, body))

    async def _verifier(self, request: Request) -> Response:
        seen, early = await self._guard(request)
        if early:
            return early
        email = seen.query["email"]
        body = fixture("hunter", "email_verifier")
        if email.startswith("bounce"):
            body["data"].update(status="invalid", result="undeliverable", score=12)
            body["data"].update(smtp_check=False)
        body["data"]["email"] = email
        body["meta"]["params"]["email"] = email
        return reply(Scripted(200, body))

    async def _company(self, request: Request) -> Response:
        seen, early = await self._guard(request)
        if early:
            return early
        body = fixture("hunter", "company_find")
        body["data"]["domain"] = body["meta"]["domain"] = seen.query["domain"]
        return reply(Scripted(200, body))

    async def _domain(self, request: Request) -> Response:
        seen, early = await self._guard(request)
        if early:
            return early
        body = fixture("hunter", "domain_search")
        body["data"]["domain"] = body["meta"]["params"]["domain"] = seen.query["domain"]
        return reply(Scripted(200, body))


def hunter_error(status: int, error_id: str, details: str) -> Scripted:
    return Scripted(status, {"errors": [{"id": error_id, "code": status, "details": details}]})


# ---- Trengo --------------------------------------------------------------------------------


class FakeTrengo(FakeProvider):
    """Trengo's send endpoints: free text (`/api/v2/messages`) and WhatsApp conversations
    started with an approved template (`/api/v2/wa_sessions`, answered with the ticket's
    shape as in trengo/wa_session_created.json)."""

    def __init__(self) -> None:
        super().__init__(
            [
                Route("/api/v2/messages", self._send, methods=["POST"]),
                Route("/api/v2/wa_sessions", self._wa_session, methods=["POST"]),
            ]
        )

    async def _guard(self, request: Request) -> tuple[Seen, Response | None]:
        """The request recorded; a scripted answer, or 401 for a wrong token, ends it."""
        seen, scripted = await self._record(request)
        if scripted:
            return seen, reply(scripted)
        if seen.headers.get("authorization") != "Bearer trengo-test-token":
            return seen, reply(Scripted(401, {"message": "Unauthenticated."}))
        return seen, None

    async def _wa_session(self, request: Request) -> Response:
        seen, early = await self._guard(request)
        if early:
            return early
        body = seen.body
        if not str(body.get("recipient_phone_number", "")).startswith("+") or not body.get(
            "hsm_id"
        ):
            return reply(Scripted(422, {"message": "The given data was invalid."}))
        created = fixture("trengo", "wa_session_created")
        return reply(Scripted(200, {**created, "id": 7000 + len(self.seen)}))

    async def _send(self, request: Request) -> Response:
        seen, early = await self._guard(request)
        if early:
            return early
        return reply(Scripted(201, {"id": 9000 + len(self.seen), "message": seen.body["message"]}))
