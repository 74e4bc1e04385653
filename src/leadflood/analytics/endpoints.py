"""/v1/analytics/summary and /v1/analytics/trends."""

from __future__ import annotations

from datetime import date

from fastapi import APIRouter, Depends, Query, Request

from leadflood.analytics import responses as out
from leadflood.analytics import service
from leadflood.auth.dependencies import requires
from leadflood.auth.policy import Permission
from leadflood.core.boundary import TX
from leadflood.core.principal import Principal
from leadflood.core.uow import Tx

router = APIRouter(tags=["analytics"])


@router.get(
    "/v1/analytics/summary",
    summary="Counts for leads, messages, sequences, distribution",
    response_model=out.Summary,
)
async def summary(
    request: Request,
    from_: date | None = Query(None, alias="from"),
    to: date | None = None,
    tx: Tx = TX,
    _: Principal = Depends(requires(Permission.outreach_read)),
) -> dict:
    return await service.summary(tx, from_, to)


@router.get("/v1/analytics/trends", summary="Daily series of one metric", response_model=out.Trend)
async def trends(
    request: Request,
    metric: str,
    from_: date | None = Query(None, alias="from"),
    to: date | None = None,
    tx: Tx = TX,
    _: Principal = Depends(requires(Permission.outreach_read)),
) -> dict:
    return await service.trends(tx, metric, from_, to)
