"""/v1/analytics/summary and /v1/analytics/trends."""

from __future__ import annotations

from datetime import date

from fastapi import APIRouter, Query

from leadflood.analytics import responses as out
from leadflood.analytics import service
from leadflood.auth.dependencies import call_as
from leadflood.auth.policy import Permission
from leadflood.core.boundary import Call

router = APIRouter(tags=["analytics"])


@router.get(
    "/v1/analytics/summary",
    summary="Counts for leads, messages, sequences, distribution",
    response_model=out.Summary,
)
async def summary(
    from_: date | None = Query(None, alias="from"),
    to: date | None = None,
    call: Call = call_as(Permission.outreach_read),
) -> dict:
    return await service.summary(call.tx, from_, to)


@router.get("/v1/analytics/trends", summary="Daily series of one metric", response_model=out.Trend)
async def trends(
    metric: str,
    from_: date | None = Query(None, alias="from"),
    to: date | None = None,
    call: Call = call_as(Permission.outreach_read),
) -> dict:
    return await service.trends(call.tx, metric, from_, to)
