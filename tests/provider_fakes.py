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


# ---- Apollo --------------------------------------------------------------------------------

APOLLO_SEARCH = "/api/v1/mixed_people/api_search"


def apollo_person(n: int, *, email: bool = True) -> dict[str, Any]:
    return {
        "id": f"apollo-{n}",
        "first_name": f"First{n}",
        "last_name": f"Last{n}",
        "title": "VP of Sales",
        "seniority": "vp",
        "email": f"first{n}.last{n}@acme{n % 3}.example"
        if email
        else "email_not_unlocked@domain.com",
        "linkedin_url": f"https://www.linkedin.com/in/p{n}",
        "city": "Austin",
        "state": "Texas",
        "country": "United States",
        "organization": {
            "name": f"Acme {n % 3}",
            "primary_domain": f"acme{n % 3}.example",
            "estimated_num_employees": 120,
            "industry": "computer software",
        },
    }


class FakeApollo(FakeProvider):
    """Serves `total` people; `with_pagination=False` drops the pagination object."""

    def __init__(self, total: int = 5, with_pagination: bool = True) -> None:
        self.total = total
        self.with_pagination = with_pagination
        super().__init__([Route(APOLLO_SEARCH, self._search, methods=["POST"])])

    async def _search(self, request: Request) -> Response:
        seen, scripted = await self._record(request)
        if scripted:
            return reply(scripted)
        if seen.headers.get("x-api-key") != "apollo-test-key":
            return reply(Scripted(401, {"error": "Invalid access credentials."}))
        page, per_page = int(seen.body.get("page", 1)), int(seen.body.get("per_page", 10))
        people = [apollo_person(n) for n in range(1, self.total + 1)]
        chunk = people[(page - 1) * per_page : page * per_page]
        body: dict[str, Any] = {"people": chunk}
        if self.with_pagination:
            pages = -(-self.total // per_page)
            body["pagination"] = {
                "page": page,
                "per_page": per_page,
                "total_entries": self.total,
                "total_pages": pages,
            }
        else:
            body["total_entries"] = self.total
        return reply(Scripted(200, body, {"x-minute-requests-left": "199"}))


# ---- Hunter --------------------------------------------------------------------------------


FIXTURES = Path(__file__).parent / "fixtures" / "providers"


def fixture(provider: str, name: str) -> Any:
    """A recorded response body of the provider's documented shape (fixtures/providers)."""
    return orjson.loads((FIXTURES / provider / f"{name}.json").read_bytes())


class FakeHunter(FakeProvider):
    """Answers from the recorded Hunter responses, with the request's own person, domain
    or address put in; an address starting with "bounce" verifies as invalid."""

    def __init__(self) -> None:
        super().__init__(
            [
                Route("/v2/email-finder", self._finder),
                Route("/v2/email-verifier", self._verifier),
                Route("/v2/domain-search", self._domain),
            ]
        )

    async def _guard(self, request: Request) -> tuple[Seen, Response | None]:
        seen, scripted = await self._record(request)
        if scripted:
            return seen, reply(scripted)
        if seen.query.get("api_key") != "hunter-test-key":
            return seen, reply(Scripted(401, fixture("hunter", "error_authentication_failed")))
        return seen, None

    async def _finder(self, request: Request) -> Response:
        seen, early = await self._guard(request)
        if early:
            return early
        q = seen.query
        body = fixture("hunter", "email_finder")
        first, last, domain = q.get("first_name", ""), q.get("last_name", ""), q["domain"]
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
    def __init__(self) -> None:
        super().__init__([Route("/api/v2/messages", self._send, methods=["POST"])])

    async def _send(self, request: Request) -> Response:
        seen, scripted = await self._record(request)
        if scripted:
            return reply(scripted)
        if seen.headers.get("authorization") != "Bearer trengo-test-token":
            return reply(Scripted(401, {"message": "Unauthenticated."}))
        return reply(Scripted(201, {"id": 9000 + len(self.seen), "message": seen.body["message"]}))
