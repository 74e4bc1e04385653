"""A real local HTTP buyer endpoint (uvicorn) with scripted answers, counting requests."""

from __future__ import annotations

import asyncio
import threading
import time
from collections import defaultdict
from dataclasses import dataclass, field

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from tests.live import ThreadedServer


@dataclass
class Reply:
    status: int = 200
    delay_s: float = 0.0
    body: str = '{"accepted": true}'
    headers: dict[str, str] = field(default_factory=dict)
    media_type: str = "application/json"
    echo_headers: bool = False  # answer with the request's headers (a leaky buyer)


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    at: float
    method: str = "POST"
    query: str = ""


class BuyerServer(ThreadedServer):
    def __init__(self) -> None:
        self.scripts: dict[str, list[Reply]] = defaultdict(list)
        self.default = Reply()
        self.received: list[Received] = []
        self._lock = threading.Lock()
        super().__init__(
            Starlette(routes=[Route("/{path:path}", self._handle, methods=["POST", "PUT", "GET"])])
        )

    def url(self, path: str = "leads") -> str:
        return f"{self.base}/{path}"

    def script(self, path: str, *replies: Reply) -> None:
        self.scripts[path].extend(replies)

    def count(self, path: str | None = None) -> int:
        with self._lock:
            return sum(1 for r in self.received if path is None or r.path == path)

    async def _handle(self, request: Request) -> Response:
        body = await request.body()
        path = request.path_params["path"]
        with self._lock:
            self.received.append(
                Received(
                    path,
                    dict(request.headers),
                    body,
                    time.time(),
                    request.method,
                    request.url.query,
                )
            )
            script = self.scripts.get(path)
            reply = script.pop(0) if script else self.default
        if reply.delay_s:
            await asyncio.sleep(reply.delay_s)
        text = str(dict(request.headers)) if reply.echo_headers else reply.body
        return Response(
            text, status_code=reply.status, headers=reply.headers, media_type=reply.media_type
        )
