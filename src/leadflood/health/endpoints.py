"""Liveness and readiness."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

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
