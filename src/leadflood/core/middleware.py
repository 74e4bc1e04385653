"""Request context: x-request-id in and out, access log, last-resort 500."""

from __future__ import annotations

import re
import time
import uuid

import structlog
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from leadflood.core.error_reporting import report
from leadflood.core.errors import error_body
from leadflood.core.tracing import finish_request_span, request_span
from leadflood.health import metrics

log = structlog.get_logger("leadflood.http")
_VALID_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")

# On every response (pages and API alike): scripts and frames from nowhere but this
# origin (htmx sets inline styles, hence 'unsafe-inline' for styles only), no MIME
# sniffing, no framing, no full URLs (unsubscribe tokens) leaked in Referer.
SECURITY_HEADERS: tuple[tuple[bytes, bytes], ...] = (
    (
        b"content-security-policy",
        b"default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
        b"img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; "
        b"base-uri 'self'; form-action 'self'; object-src 'none'",
    ),
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"same-origin"),
)


class RequestContextMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        incoming = ""
        for name, value in scope["headers"]:
            if name == b"x-request-id":
                incoming = value.decode("latin-1")
                break
        request_id = incoming if _VALID_REQUEST_ID.match(incoming) else uuid.uuid4().hex
        scope.setdefault("state", {})["request_id"] = request_id
        started = time.perf_counter()
        status = 500
        response_started = False

        async def send_with_id(message: Message) -> None:
            nonlocal status, response_started
            if message["type"] == "http.response.start":
                response_started = True
                status = message["status"]
                message.setdefault("headers", [])
                message["headers"] = [
                    *message["headers"],
                    (b"x-request-id", request_id.encode()),
                    *SECURITY_HEADERS,
                ]
            await send(message)

        method = scope.get("method", "")
        with request_span(method, request_id) as span:
            try:
                await self.app(scope, receive, send_with_id)
            except Exception as exc:
                log.exception("unhandled_exception", path=scope.get("path"))
                report(exc)
                if not response_started:
                    await send_with_id(
                        {
                            "type": "http.response.start",
                            "status": 500,
                            "headers": [(b"content-type", b"application/json")],
                        }
                    )
                    await send(
                        {
                            "type": "http.response.body",
                            "body": error_body("internal_error", "unexpected server error"),
                        }
                    )
            finally:
                elapsed = time.perf_counter() - started
                route = metrics.route_label(scope)
                finish_request_span(span, route, method, status)
                metrics.HTTP_REQUESTS.labels(route, method, str(status)).inc()
                metrics.HTTP_LATENCY.labels(route, method).observe(elapsed)
                log.info(
                    "request",
                    method=method,
                    path=scope.get("path"),
                    status=status,
                    duration_ms=round(elapsed * 1000, 2),
                )
