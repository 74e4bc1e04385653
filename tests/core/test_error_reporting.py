"""With a Sentry DSN, an unexpected error of a request (its 500) and of a job reach a
real local Sentry-compatible endpoint as envelopes, with release and environment, and
without the secrets the logs also never show."""

from __future__ import annotations

import gzip
import threading
import time

import httpx
import orjson
import sentry_sdk
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from leadflood import __version__
from leadflood.app import create_app
from leadflood.core import error_reporting
from leadflood.core.jobs import REGISTRY, JobSpec, job
from leadflood.core.retry import NO_RETRY
from leadflood.core.runtime import build_runtime
from leadflood.core.uow import unit_of_work
from tests.conftest import drain_jobs, make_settings
from tests.live import ThreadedServer


class FakeSentry(ThreadedServer):
    """Sentry's envelope endpoint: POST /api/<project>/envelope/, gzip or plain."""

    def __init__(self) -> None:
        self.events: list[dict] = []
        self._lock = threading.Lock()
        super().__init__(
            Starlette(routes=[Route("/api/{project}/envelope/", self._envelope, methods=["POST"])])
        )

    async def _envelope(self, request: Request) -> Response:
        body = await request.body()
        if request.headers.get("content-encoding") == "gzip":
            body = gzip.decompress(body)
        lines = body.split(b"\n")
        for header, item in zip(lines[1::2], lines[2::2], strict=False):
            if orjson.loads(header).get("type") == "event":
                with self._lock:
                    self.events.append(orjson.loads(item))
        return Response('{"id": "ok"}', media_type="application/json")


@job("test.boom", retry=NO_RETRY)
async def _boom(ctx) -> None:  # type: ignore[no-untyped-def]
    raise RuntimeError("job exploded with password=hunter2")


async def test_request_and_job_errors_reach_the_endpoint(database_url) -> None:
    with FakeSentry() as sentry:
        dsn = f"http://publickey@127.0.0.1:{sentry.port}/1"
        runtime = build_runtime(make_settings(database_url, sentry_dsn=dsn), database_url)
        try:
            app = create_app(runtime)

            async def explode(request: Request) -> Response:
                raise ValueError("unexpected in a handler, api_key=sk_live_abcdef123456")

            app.router.add_route("/boom", explode)
            transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
            async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
                response = await http.get("/boom")
            assert response.status_code == 500
            async with unit_of_work(runtime.db) as tx:
                await tx.enqueue("test.boom", {})
            await drain_jobs(runtime)
            sentry_sdk.flush(timeout=5)
            deadline = time.monotonic() + 5
            while len(sentry.events) < 2 and time.monotonic() < deadline:
                time.sleep(0.05)
        finally:
            await runtime.close()
            sentry_sdk.init(dsn=None)
            error_reporting._enabled = False
            REGISTRY.pop("test.boom", None)
    kinds = {e["exception"]["values"][-1]["type"] for e in sentry.events}
    assert kinds == {"ValueError", "RuntimeError"}
    for event in sentry.events:
        assert event["release"] == f"leadflood@{__version__}"
        assert event["environment"] == "test"
    text = orjson.dumps(sentry.events).decode()
    assert "hunter2" not in text and "sk_live_abcdef123456" not in text


def test_no_dsn_no_reporting(database_url) -> None:
    assert error_reporting.init_error_reporting(make_settings(database_url)) is False
    assert JobSpec  # the registry's type, imported for the job above
