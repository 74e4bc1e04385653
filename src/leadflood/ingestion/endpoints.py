"""HTTP surface of ingestion: POST /api/leads[/{subpath}], GET /api/leads/{lead_id}."""

from __future__ import annotations

import ipaddress
import uuid
from typing import Any

import orjson
import structlog
from fastapi import APIRouter, Request
from starlette.responses import Response

from leadflood.core.errors import AppError, NotFound
from leadflood.core.request_guard import error_response, too_large
from leadflood.core.security import presented_api_key
from leadflood.core.tracing import annotate_lead
from leadflood.core.uow import single_statements
from leadflood.ingestion.canonical import canonical_path
from leadflood.ingestion.schemas import LeadAccepted, LeadState, accepted, state
from leadflood.ingestion.service import IngestRequest, get_lead_for_source, ingest_lead

router = APIRouter(tags=["ingestion"])

_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: {"description": "invalid input (stable error code)"},
    401: {"description": "unauthorized_source"},
    409: {"description": "ambiguous_source_mapping"},
    413: {"description": "payload_too_large"},
    415: {"description": "unsupported_media_type (JSON, form-urlencoded and XML are read)"},
}


async def read_body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise too_large(limit)
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise too_large(limit)
        chunks.append(chunk)
    return b"".join(chunks)


def client_ip(request: Request) -> str | None:
    host = request.client.host if request.client else None
    try:
        return str(ipaddress.ip_address(host)) if host else None
    except ValueError:
        return None


def json_response(status: int, body: dict) -> Response:
    return Response(orjson.dumps(body), status_code=status, media_type="application/json")


async def _post(request: Request) -> Response:
    runtime = request.app.state.runtime
    ingest = await ingest_request(request)
    async with single_statements(runtime.db) as conn:
        result = await ingest_lead(conn, request.app.state.source_cache, ingest)
    # The request's log line names the lead its jobs will name (the correlation).
    structlog.contextvars.bind_contextvars(lead_id=str(result.lead.lead_id))
    annotate_lead(result.lead.lead_id)
    return json_response(201 if result.created else 200, accepted(result.lead))


async def ingest_request(request: Request) -> IngestRequest:
    """A posted body and what classification and authentication read of the request."""
    body = await read_body(request, request.app.state.runtime.settings.max_body_bytes)
    headers = request.headers
    return IngestRequest(
        body=body,
        content_type=headers.get("content-type"),
        host=headers.get("host"),
        path=request.scope["path"],
        idempotency_header=headers.get("idempotency-key"),
        api_key=presented_api_key(headers.get("authorization"), headers.get("x-api-key")),
        ip=client_ip(request),
        user_agent=headers.get("user-agent"),
    )


@router.post("/api/leads", status_code=201, response_model=LeadAccepted, responses=_RESPONSES)
async def post_lead(request: Request) -> Response:
    """Accept a lead. 201 on first insert, 200 with the same lead_id on replay."""
    return await _post(request)


@router.post(
    "/api/leads/{subpath:path}", status_code=201, response_model=LeadAccepted, responses=_RESPONSES
)
async def post_lead_to_path(subpath: str, request: Request) -> Response:
    """Same as POST /api/leads; the path selects the source through its path prefix."""
    return await _post(request)


@router.get(
    "/api/leads/{lead_id}",
    response_model=LeadState,
    responses={401: {"description": "unauthorized_source"}, 404: {}},
)
async def get_lead(lead_id: str, request: Request) -> Response:
    try:
        parsed = uuid.UUID(lead_id)
    except ValueError:
        raise NotFound("lead_not_found", "no lead with this id") from None
    headers = request.headers
    key = presented_api_key(headers.get("authorization"), headers.get("x-api-key"))
    async with single_statements(request.app.state.runtime.db) as conn:
        lead = await get_lead_for_source(conn, parsed, key)
    return json_response(200, state(lead))


class LeadIngestionFastPath:
    """POSTs to /api/leads[/...] go straight to the ingestion handler, whatever the
    path's case, repeated or trailing slashes.

    A source's posting URL is matched on its canonical path (§3), so every spelling
    the canonicalization accepts must reach ingestion. Going past FastAPI's router and
    request machinery is also the hot path's largest saving (decision 0012): the routes
    above stay registered for the OpenAPI document and behave the same. Outer
    middleware (request id, CORS, last-resort 500) still wraps this.
    """

    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] == "http" and scope.get("method") == "POST":
            path = canonical_path(scope["path"])
            if path == "/api/leads" or path.startswith("/api/leads/"):
                if path != scope["path"]:
                    scope = {**scope, "path": path, "raw_path": path.encode()}
                try:
                    response = await _post(Request(scope, receive))
                except AppError as exc:
                    response = error_response(exc)
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)
