"""The buyer's page (/buyers/{id}): what an operator works a buyer from, with a weekly
schedule editor, resume, and the Test panel. Reads through the buyer-page service;
changes go through the configuration service (validated and audited)."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Depends, Request
from pydantic import ValidationError
from starlette.responses import HTMLResponse, RedirectResponse, Response

from leadflood.admin import buyer_page
from leadflood.admin import config_service as config
from leadflood.admin.resources import RESOURCES
from leadflood.auth.policy import Permission
from leadflood.core.boundary import TX
from leadflood.core.errors import AppError
from leadflood.core.principal import Principal
from leadflood.core.runtime import runtime_of
from leadflood.core.uow import Tx
from leadflood.web.pages import attempt, render
from leadflood.web.session import page_requires, text_form

router = APIRouter(include_in_schema=False)

READ = Depends(page_requires(Permission.config_read))
WRITE = Depends(page_requires(Permission.config_write))
BUYERS = RESOURCES["buyers"]


async def _page(
    request: Request,
    tx: Tx,
    principal: Principal,
    buyer_id: uuid.UUID,
    *,
    status: int = 200,
    saved: bool = False,
    error: str | None = None,
) -> HTMLResponse:
    view = await buyer_page.overview(tx, buyer_id)
    return render(request, "buyer.html", principal, status=status, v=view, saved=saved, error=error)


@router.get("/buyers/{buyer_id}")
async def buyer(
    buyer_id: uuid.UUID, request: Request, principal: Principal = READ, tx: Tx = TX
) -> HTMLResponse:
    saved = request.query_params.get("saved") == "1"
    return await _page(request, tx, principal, buyer_id, saved=saved)


async def _update(
    request: Request, tx: Tx, principal: Principal, buyer_id: uuid.UUID, values: dict
) -> Response:
    key = runtime_of(request).settings.secret_key.get_secret_value()
    try:
        body = BUYERS.patch(**values)
        await attempt(tx, config.update(tx, principal, BUYERS, buyer_id, body, key))
    except ValidationError as exc:
        message = "; ".join(str(e["msg"]) for e in exc.errors())
        return await _page(request, tx, principal, buyer_id, status=400, error=message)
    except AppError as exc:
        return await _page(request, tx, principal, buyer_id, status=exc.status, error=exc.message)
    return RedirectResponse(f"/buyers/{buyer_id}?saved=1", status_code=303)


@router.post("/buyers/{buyer_id}/schedule")
async def save_schedule(
    buyer_id: uuid.UUID, request: Request, principal: Principal = WRITE, tx: Tx = TX
) -> Response:
    form = {k: str(v) for k, v in (await text_form(request)).items()}
    schedule = buyer_page.schedule_from_form(form)
    return await _update(request, tx, principal, buyer_id, {"schedule": schedule})


@router.post("/buyers/{buyer_id}/resume")
async def resume(
    buyer_id: uuid.UUID, request: Request, principal: Principal = WRITE, tx: Tx = TX
) -> Response:
    return await _update(request, tx, principal, buyer_id, {"status": "active"})
