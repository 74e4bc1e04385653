"""Liveness, readiness and the Prometheus metrics page."""

from __future__ import annotations

import hmac

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST
from starlette.responses import Response

from leadflood.core.boundary import TX
from leadflood.core.errors import NotFound, Unauthorized
from leadflood.core.settings import Environment
from leadflood.core.uow import Tx
from leadflood.health import metrics, metrics_repository

router = APIRouter(tags=["health"])


@router.get("/health")
async def health() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/ready")
async def ready(request: Request) -> JSONResponse:
    ok = await request.app.state.runtime.db.ping()
    if ok:
        return JSONResponse({"status": "ready", "db": "ok"})
    return JSONResponse({"status": "not_ready", "db": "fail"}, status_code=503)


@router.get("/metrics", include_in_schema=False)
async def metrics_page(request: Request, tx: Tx = TX) -> Response:
    """Prometheus text format. In production only with the metrics token (404 without
    one configured, 401 with a wrong one): the page names buyers and job kinds."""
    settings = request.app.state.runtime.settings
    token = settings.metrics_token.get_secret_value() if settings.metrics_token else None
    if settings.env == Environment.production or token:
        if not token:
            raise NotFound("not_found", "not found")
        presented = request.headers.get("authorization", "")
        if not hmac.compare_digest(presented.encode(), f"Bearer {token}".encode()):
            raise Unauthorized("unauthorized", "the metrics token is required")
    body = metrics.exposition(await metrics_repository.snapshot(tx))
    return Response(body, media_type=CONTENT_TYPE_LATEST)
