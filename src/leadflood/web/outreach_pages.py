"""Outreach pages: ICP list and editor, searches with a live status panel, leads and
their enrichment. Pages call the prospecting and enrichment services, never SQL."""

from __future__ import annotations

import contextlib
import uuid
from dataclasses import asdict
from typing import Any

from fastapi import APIRouter, Depends, Request
from pydantic import ValidationError
from starlette.responses import HTMLResponse, RedirectResponse, Response

from leadflood.auth.policy import Permission
from leadflood.core.boundary import TX
from leadflood.core.errors import AppError
from leadflood.core.executions import get_execution
from leadflood.core.principal import Principal
from leadflood.core.runtime import runtime_of
from leadflood.core.uow import Tx
from leadflood.enrichment.enrichers import EnrichmentProvider
from leadflood.enrichment.service import start_enrichment
from leadflood.prospecting import service
from leadflood.prospecting.repository import SORTS, Icp
from leadflood.prospecting.schemas import IcpIn, LeadIn, SearchIn
from leadflood.prospecting.sources import ProspectProvider
from leadflood.web import forms
from leadflood.web.pages import attempt, render
from leadflood.web.session import page_requires, text_form

router = APIRouter(include_in_schema=False, prefix="/outreach")

READ = Depends(page_requires(Permission.outreach_read))
WORK = Depends(page_requires(Permission.outreach_write))
DEFINE = Depends(page_requires(Permission.icps_write))

LIST_FIELDS = ("titles", "seniorities", "locations", "industries", "company_sizes", "domains")
TERMINAL = ("completed", "failed")


def _icp_form(form: dict[str, str]) -> dict[str, Any]:
    values: dict[str, Any] = {k: form.get(k, "") for k in ("name", "description", "keywords")}
    for name in LIST_FIELDS:
        values[name] = [line.strip() for line in form.get(name, "").splitlines() if line.strip()]
    return values


@router.get("/icps")
async def icps(request: Request, principal: Principal = READ, tx: Tx = TX) -> HTMLResponse:
    items = await service.list_icps(tx)
    return render(request, "outreach/icps.html", principal, icps=items)


@router.get("/icps/new")
async def icp_new(request: Request, principal: Principal = DEFINE) -> HTMLResponse:
    return render(request, "outreach/icp_form.html", principal, icp=None, values={}, errors={})


@router.post("/icps/new")
async def icp_create(request: Request, principal: Principal = DEFINE, tx: Tx = TX) -> Response:
    values = _icp_form(dict(await text_form(request)))
    try:
        icp = await attempt(tx, service.create_icp(tx, principal, IcpIn(**values)))
    except ValidationError as exc:
        return render(
            request,
            "outreach/icp_form.html",
            principal,
            status=400,
            icp=None,
            values=values,
            errors=forms.validation_errors(exc),
        )
    return RedirectResponse(f"/outreach/icps/{icp.id}?saved=1", status_code=303)


async def _icp_page(
    request: Request,
    tx: Tx,
    principal: Principal,
    icp: Icp,
    values: dict[str, Any],
    errors: dict[str, str],
    status: int = 200,
) -> HTMLResponse:
    runs = await service.list_runs(tx, icp.id)
    return render(
        request,
        "outreach/icp_form.html",
        principal,
        status=status,
        icp=icp,
        values=values,
        errors=errors,
        runs=runs,
        providers=list(ProspectProvider),
        default_provider=runtime_of(request).settings.prospect_provider,
        saved=request.query_params.get("saved") == "1",
    )


@router.get("/icps/{icp_id}")
async def icp_edit(icp_id: uuid.UUID, request: Request, principal: Principal = READ, tx: Tx = TX):
    icp = await service.get_icp(tx, icp_id)
    return await _icp_page(request, tx, principal, icp, asdict(icp), {})


@router.post("/icps/{icp_id}")
async def icp_update(
    icp_id: uuid.UUID, request: Request, principal: Principal = DEFINE, tx: Tx = TX
):
    values = _icp_form(dict(await text_form(request)))
    icp = await service.get_icp(tx, icp_id)
    try:
        await attempt(tx, service.replace_icp(tx, principal, icp_id, IcpIn(**values)))
    except ValidationError as exc:
        return await _icp_page(
            request, tx, principal, icp, values, forms.validation_errors(exc), status=400
        )
    return RedirectResponse(f"/outreach/icps/{icp_id}?saved=1", status_code=303)


@router.post("/icps/{icp_id}/search")
async def icp_search(icp_id: uuid.UUID, request: Request, principal: Principal = WORK, tx: Tx = TX):
    form = await text_form(request)
    try:
        body = SearchIn(
            provider=str(form.get("provider") or "") or None,
            pages=int(str(form.get("pages") or 1)),
            per_page=int(str(form.get("per_page") or 25)),
            enrich_top=int(str(form.get("enrich_top") or 0)),
        )
        started = await attempt(
            tx, service.start_search(tx, runtime_of(request).settings, principal, icp_id, body)
        )
    except (AppError, ValidationError, ValueError) as exc:
        message = (
            exc.message
            if isinstance(exc, AppError)
            else "pages 1 to 10, per page 1 to 100, enrich the top 0 to 100"
        )
        return render(request, "_flash.html", principal, message=message, ok=False)
    return await run_panel(icp_id, started["run_id"], request, principal, tx=tx)


@router.get("/icps/{icp_id}/runs/{run_id}")
async def run_panel(
    icp_id: uuid.UUID, run_id: uuid.UUID, request: Request, principal: Principal = READ, tx: Tx = TX
) -> HTMLResponse:
    run = await service.get_run(tx, icp_id, run_id)
    job = await get_execution(tx, run.job_id) if run.job_id else None
    return render(
        request, "outreach/_run_panel.html", principal, run=run, job=job, terminal=TERMINAL
    )


@router.get("/leads")
async def leads(request: Request, principal: Principal = READ, tx: Tx = TX) -> HTMLResponse:
    params = request.query_params
    filters: dict[str, Any] = {}
    for name in ("status", "email_status", "source"):
        if params.get(name):
            filters[name] = params[name]
    if params.get("icp_id"):
        with contextlib.suppress(ValueError):  # a mangled id filters nothing
            filters["icp_id"] = uuid.UUID(params["icp_id"])
    sort = params.get("sort") or "-created_at"
    error = None
    try:
        page = await service.list_leads(
            tx,
            filters=filters,
            q=params.get("q") or None,
            sort=sort,
            cursor=params.get("cursor") or None,
            limit=50,
        )
    except AppError as exc:
        page, error = {"items": [], "next_cursor": None}, exc.message
    shown = {k: v for k, v in params.items() if k != "cursor" and v}
    template = (
        "outreach/_leads_table.html" if request.headers.get("hx-request") else "outreach/leads.html"
    )
    return render(
        request,
        template,
        principal,
        page=page,
        filters=shown,
        sorts=list(SORTS),
        error=error,
        icps=await service.list_icps(tx),
    )


LEAD_FORM_FIELDS = (
    "email",
    "first_name",
    "last_name",
    "title",
    "company",
    "company_domain",
    "phone",
)


@router.post("/leads")
async def lead_create(request: Request, principal: Principal = WORK, tx: Tx = TX) -> Response:
    """Add one lead by hand, optionally enriching it at once."""
    form = dict(await text_form(request))
    values = {k: str(form[k]).strip() for k in LEAD_FORM_FIELDS if str(form.get(k, "")).strip()}
    settings = runtime_of(request).settings
    try:
        body = LeadIn(**values, enrich=form.get("enrich") == "on")
        lead = await attempt(tx, service.create_lead_and_enrich(tx, settings, principal, body))
    except (ValidationError, AppError) as exc:
        errors = (
            forms.validation_errors(exc)
            if isinstance(exc, ValidationError)
            else {"__all__": exc.message}
        )
        page = await service.list_leads(
            tx, filters={}, q=None, sort="-created_at", cursor=None, limit=50
        )
        return render(
            request,
            "outreach/leads.html",
            principal,
            status=400,
            page=page,
            filters={},
            sorts=list(SORTS),
            error=None,
            icps=await service.list_icps(tx),
            values=values,
            errors=errors,
        )
    return RedirectResponse(f"/outreach/leads/{lead.id}", status_code=303)


@router.get("/leads/{lead_id}")
async def lead_page(lead_id: uuid.UUID, request: Request, principal: Principal = READ, tx: Tx = TX):
    lead = await service.lead_detail(tx, lead_id)
    return render(
        request,
        "outreach/lead.html",
        principal,
        lead=lead,
        providers=list(EnrichmentProvider),
        default_provider=runtime_of(request).settings.enrichment_provider,
    )


@router.post("/leads/{lead_id}/enrich")
async def lead_enrich(
    lead_id: uuid.UUID, request: Request, principal: Principal = WORK, tx: Tx = TX
):
    form = await text_form(request)
    try:
        started = await attempt(
            tx,
            start_enrichment(
                tx,
                runtime_of(request).settings,
                principal,
                lead_id,
                overwrite=form.get("overwrite") is not None,
                provider=str(form.get("provider") or "") or None,
            ),
        )
    except AppError as exc:
        return render(request, "_flash.html", principal, message=exc.message, ok=False)
    return await job_panel(started["job_id"], request, principal, tx=tx)


@router.get("/jobs/{job_id}")
async def job_panel(job_id: uuid.UUID, request: Request, principal: Principal = READ, tx: Tx = TX):
    job = await get_execution(tx, job_id)
    if job is None:
        return render(request, "_flash.html", principal, message="no such job", ok=False)
    return render(request, "outreach/_job_panel.html", principal, job=job, terminal=TERMINAL)
