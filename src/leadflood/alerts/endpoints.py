"""Alerts in the API (/v1/admin/alerts) and the web UI (/alerts): list, acknowledge,
resolve."""

from __future__ import annotations

import uuid
from typing import Literal

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse

from leadflood.alerts import service
from leadflood.alerts.repository import Alert
from leadflood.auth.dependencies import call_as
from leadflood.auth.policy import Permission
from leadflood.core.api import ApiModel, Items
from leadflood.core.boundary import TX, Call
from leadflood.core.errors import AppError
from leadflood.core.principal import Principal
from leadflood.core.uow import Tx
from leadflood.web.session import page_requires

router = APIRouter(tags=["alerts"])
Status = Literal["open", "acknowledged", "resolved", "live"]


class AlertChange(ApiModel):
    id: uuid.UUID
    status: str


@router.get("/v1/admin/alerts", summary="Alerts, live first", response_model=Items[Alert])
async def list_alerts(
    status: Status | None = None,
    limit: int = Query(200, ge=1, le=1000),
    call: Call = call_as(Permission.leads_read),
) -> dict:
    return {"items": await service.alerts(call.tx, status, limit)}


@router.post(
    "/v1/admin/alerts/{alert_id}/{action}",
    summary="Acknowledge or resolve an alert",
    response_model=AlertChange,
)
async def change_alert(
    alert_id: uuid.UUID,
    action: Literal["acknowledge", "resolve"],
    call: Call = call_as(Permission.leads_act),
) -> dict:
    status = "acknowledged" if action == "acknowledge" else "resolved"
    return {
        "id": alert_id,
        "status": await service.change(call.tx, call.principal, alert_id, status),
    }


@router.get("/alerts", include_in_schema=False)
async def alerts_page(
    request: Request,
    principal: Principal = Depends(page_requires(Permission.leads_read)),
    tx: Tx = TX,
) -> HTMLResponse:
    from leadflood.web.pages import render

    items = await service.alerts(tx, None, 200)
    return render(request, "alerts.html", principal, alerts=items)


@router.post("/alerts/{alert_id}/{action}", include_in_schema=False)
async def alert_action(
    alert_id: uuid.UUID,
    action: str,
    request: Request,
    principal: Principal = Depends(page_requires(Permission.leads_act)),
    tx: Tx = TX,
) -> HTMLResponse:
    from leadflood.web.pages import attempt, render

    status = {"acknowledge": "acknowledged", "resolve": "resolved"}.get(action)
    if status is None:
        return render(request, "not_found.html", principal, status=404, what="action")
    try:
        await attempt(tx, service.change(tx, principal, alert_id, status))
        message, ok = f"alert {status}", True
    except AppError as exc:
        message, ok = f"{exc.message} ({exc.code})", False
    return render(request, "_flash.html", principal, message=message, ok=ok)
