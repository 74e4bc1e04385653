"""Server-rendered web UI (Jinja2 + HTMX): pages call services, never SQL."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

from fastapi import APIRouter, Depends, Request
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from starlette.responses import HTMLResponse, RedirectResponse, Response

from leadflood import __version__
from leadflood.admin import config_service as config
from leadflood.admin import lead_service
from leadflood.admin.resources import RESOURCES, Resource
from leadflood.auth.dependencies import (
    REFRESH_COOKIE,
    auth_service,
    client_ip,
    require_same_origin,
)
from leadflood.auth.policy import Permission, allows
from leadflood.catalog import service as catalog
from leadflood.core.boundary import TX
from leadflood.core.errors import AppError, NotFound
from leadflood.core.principal import Principal
from leadflood.core.runtime import runtime_of
from leadflood.core.uow import Tx
from leadflood.delivery import buyer_test
from leadflood.web import forms
from leadflood.web.session import (
    clear_session_cookies,
    page_requires,
    safe_next,
    set_session_cookies,
    text_form,
)

HERE = Path(__file__).parent
templates = Jinja2Templates(directory=HERE / "templates")
templates.env.globals["version"] = __version__
templates.env.filters["show"] = forms.display
templates.env.filters["money"] = forms.money
static = StaticFiles(directory=HERE / "static")

router = APIRouter(include_in_schema=False)
T = TypeVar("T")

READ_CONFIG = Depends(page_requires(Permission.config_read))
WRITE_CONFIG = Depends(page_requires(Permission.config_write))
READ_LEADS = Depends(page_requires(Permission.leads_read))
ACT_LEADS = Depends(page_requires(Permission.leads_act))


def render(
    request: Request, name: str, principal: Principal | None = None, status: int = 200, **ctx
) -> HTMLResponse:
    ctx.update(
        principal=principal,
        can=lambda p: principal is not None and allows(principal.role, Permission(p)),
        resources=RESOURCES,
        # Outside production every page says which environment it is (no one mistakes a
        # staging server's leads for real ones).
        environment=request.app.state.runtime.settings.env.value,
    )
    return templates.TemplateResponse(request, name, ctx, status_code=status)


async def attempt(tx: Tx, work: Awaitable[T]) -> T:
    """Run a change in a savepoint: a page that shows a refused change as a message (and
    so returns normally, committing its unit) must not keep what the change did before
    it was refused."""
    async with tx.savepoint():
        return await work


# ---- session -------------------------------------------------------------------------


@router.get("/login")
async def login_page(request: Request, next: str = "/") -> HTMLResponse:
    return render(request, "login.html", next=safe_next(next), email="", error=None)


@router.post("/login")
async def login_submit(request: Request, tx: Tx = TX) -> Response:
    # Like every cookie-authenticated write: a login posted from another site (login
    # CSRF, which would sign the victim into the attacker's account) is refused.
    require_same_origin(request)
    form = await text_form(request)
    email, password = str(form.get("email", "")), str(form.get("password", ""))
    target = safe_next(str(form.get("next", "/")))
    try:
        pair = await auth_service(request, tx).login(email, password, client_ip(request))
    except AppError as exc:
        return render(
            request, "login.html", status=exc.status, next=target, email=email, error=exc.message
        )
    response = RedirectResponse(target, status_code=303)
    set_session_cookies(response, pair, runtime_of(request).settings.env)
    return response


@router.get("/auth/renew")
async def renew(request: Request, next: str = "/", tx: Tx = TX) -> Response:
    token = request.cookies.get(REFRESH_COOKIE, "")
    target = safe_next(next)
    try:
        pair = await auth_service(request, tx).refresh(token)
    except AppError:
        response = RedirectResponse(f"/login?next={target}", status_code=303)
        clear_session_cookies(response)
        return response
    response = RedirectResponse(target, status_code=303)
    set_session_cookies(response, pair, runtime_of(request).settings.env)
    return response


@router.post("/logout")
async def logout(request: Request, tx: Tx = TX) -> Response:
    token = request.cookies.get(REFRESH_COOKIE)
    if token:
        await auth_service(request, tx).logout(token)
    response = RedirectResponse("/login", status_code=303)
    clear_session_cookies(response)
    return response


# ---- dashboard and leads ---------------------------------------------------------------


@router.get("/")
async def dashboard(
    request: Request, principal: Principal = READ_LEADS, tx: Tx = TX
) -> HTMLResponse:
    data = await lead_service.dashboard(tx, days=14)
    peak = max([d.received for d in data["days"]] + [1])
    return render(request, "dashboard.html", principal, data=data, peak=peak)


def _uuid_or_none(value: str | None) -> uuid.UUID | None:
    try:
        return uuid.UUID(value) if value else None
    except ValueError:
        return None


def _date_or_none(value: str | None) -> datetime | None:
    try:
        return datetime.fromisoformat(value) if value else None
    except ValueError:
        return None


@router.get("/leads")
async def leads(request: Request, principal: Principal = READ_LEADS, tx: Tx = TX) -> HTMLResponse:
    params = request.query_params
    query = lead_service.LeadQuery(
        status=params.get("status") or None,
        offer_id=_uuid_or_none(params.get("offer_id")),
        buyer_id=_uuid_or_none(params.get("buyer_id")),
        q=params.get("q") or None,
        created_from=_date_or_none(params.get("created_from")),
        created_to=_date_or_none(params.get("created_to")),
        cursor=params.get("cursor") or None,
        limit=50,
    )
    error = None
    try:
        page = await lead_service.search(tx, query)
    except AppError as exc:
        page, error = {"items": [], "next_cursor": None}, exc.message
    options = await config.reference_options(tx, forms.REFERENCES, ["offer_id", "buyer_id"])
    filters = {k: v for k, v in params.items() if k != "cursor" and v}
    template = "_leads_table.html" if request.headers.get("hx-request") else "leads.html"
    return render(
        request,
        template,
        principal,
        page=page,
        filters=filters,
        options=options,
        statuses=lead_service.LEAD_STATUSES,
        error=error,
    )


@router.get("/leads/{lead_id}")
async def lead_page(
    lead_id: uuid.UUID, request: Request, principal: Principal = READ_LEADS, tx: Tx = TX
) -> HTMLResponse:
    story = await lead_service.detail(tx, lead_id)
    return render(request, "lead.html", principal, story=story, lead=story["lead"])


@router.post("/leads/{lead_id}/{action}")
async def lead_action(
    lead_id: uuid.UUID,
    action: str,
    request: Request,
    principal: Principal = ACT_LEADS,
    tx: Tx = TX,
) -> HTMLResponse:
    actions = {"redeliver": lead_service.redeliver, "reroute": lead_service.reroute}
    if action not in actions:
        return render(request, "not_found.html", principal, status=404, what="action")
    try:
        result = await attempt(tx, actions[action](tx, principal, lead_id))
        message, ok = f"{action}: {result['result']} (status {result['status']})", True
    except AppError as exc:
        message, ok = f"{exc.message} ({exc.code})", False
    return render(request, "_flash.html", principal, message=message, ok=ok)


# ---- configuration ---------------------------------------------------------------------


def _resource(name: str) -> Resource:
    resource = RESOURCES.get(name)
    if resource is None:
        raise NotFound("page_not_found", "no such configuration page")
    return resource


async def _reference_options(
    tx: Tx, fields: list[forms.FormField], extra: tuple[str, ...] = ()
) -> dict:
    names = [f.name for f in fields if f.kind == "reference"] + list(extra)
    return await config.reference_options(tx, forms.REFERENCES, names)


async def _form_page(
    request: Request,
    tx: Tx,
    principal: Principal,
    resource: Resource,
    fields: list[forms.FormField],
    row: dict[str, Any] | None,
    errors: dict[str, Any],
    *,
    status: int = 200,
    saved: bool = False,
) -> HTMLResponse:
    # The buyer page also imports service areas, which needs the market choices.
    extra = ("market_id",) if row and resource.name == "buyers" else ()
    return render(
        request,
        "config_form.html",
        principal,
        status=status,
        resource=resource,
        fields=fields,
        options=await _reference_options(tx, fields, extra),
        row=row,
        errors=errors,
        saved=saved,
    )


@router.get("/config")
async def config_index(request: Request, principal: Principal = READ_CONFIG) -> HTMLResponse:
    return render(request, "config_index.html", principal)


@router.get("/config/{name}")
async def config_list(name: str, request: Request, principal: Principal = READ_CONFIG, tx: Tx = TX):
    resource = _resource(name)
    filters = {k: v for k, v in request.query_params.items() if k in resource.filters and v}
    typed = {k: (_uuid_or_none(v) if k.endswith("_id") else v) for k, v in filters.items()}
    rows, total = await config.list_(tx, resource, typed, limit=500)
    columns = [f.name for f in forms.form_fields(resource.create, editing=False)]
    columns = [c for c in columns if c not in forms.WRITE_ONLY and c != "with_api_key"]
    labels = await _reference_options(
        tx,
        [forms.FormField(c, c, "reference", False) for c in columns if c in forms.REFERENCES],
    )
    names = {k: {str(o.id): o.label for o in v} for k, v in labels.items()}
    return render(
        request,
        "config_list.html",
        principal,
        resource=resource,
        rows=[r.model_dump() for r in rows],
        total=total,
        columns=columns,
        names=names,
    )


@router.get("/config/offers/{offer_id}/posting")
async def posting_instructions(
    offer_id: uuid.UUID, request: Request, principal: Principal = READ_CONFIG, tx: Tx = TX
) -> HTMLResponse:
    """The offer's posting instructions, a page to hand to a source."""
    base_url = runtime_of(request).settings.base_url
    doc = await catalog.posting_instructions(tx, offer_id, base_url)
    return render(request, "posting_instructions.html", principal, doc=doc)


@router.post("/config/buyers/{buyer_id}/test")
async def buyer_test_panel(
    buyer_id: uuid.UUID, request: Request, principal: Principal = WRITE_CONFIG
) -> HTMLResponse:
    """The buyer's Test button: the request for a sample lead, and its answer when sent."""
    send = (await text_form(request)).get("send") == "1"
    try:
        result = await buyer_test.test_buyer(runtime_of(request), buyer_id, None, send=send)
    except AppError as exc:
        return render(request, "_buyer_test.html", principal, result=None, error=exc.message)
    return render(request, "_buyer_test.html", principal, result=result, error=None)


@router.get("/config/{name}/new")
async def config_new(name: str, request: Request, principal: Principal = WRITE_CONFIG, tx: Tx = TX):
    resource = _resource(name)
    fields = forms.form_fields(resource.create, editing=False)
    for f in fields:
        if f.name in request.query_params:
            f.value = request.query_params[f.name]
    return await _form_page(request, tx, principal, resource, fields, None, {})


@router.post("/config/{name}/new")
async def config_create(
    name: str, request: Request, principal: Principal = WRITE_CONFIG, tx: Tx = TX
):
    resource = _resource(name)
    body, fields, errors = forms.parse_form(resource, dict(await text_form(request)), editing=False)
    if body is not None:
        try:
            await config.check_destination(resource, body, runtime_of(request).settings)
            row, extras = await attempt(
                tx, config.create(tx, principal, resource, body, _secret_key(request))
            )
        except AppError as exc:
            errors = {"__all__": f"{exc.message} ({exc.code})"}
        else:
            if extras.get("api_key"):
                return render(
                    request,
                    "secret_once.html",
                    principal,
                    resource=resource,
                    row=row,
                    api_key=extras["api_key"],
                )
            row_id = row.model_dump()["id"]  # each resource's row model has its own fields
            return RedirectResponse(f"/config/{name}/{row_id}?saved=1", status_code=303)
    return await _form_page(request, tx, principal, resource, fields, None, errors, status=400)


def _secret_key(request: Request) -> str:
    return runtime_of(request).settings.secret_key.get_secret_value()


@router.get("/config/{name}/{item_id}")
async def config_edit(
    name: str, item_id: uuid.UUID, request: Request, principal: Principal = READ_CONFIG, tx: Tx = TX
):
    resource = _resource(name)
    row = (await config.get(tx, resource, item_id)).model_dump()
    fields = forms.form_fields(resource.patch, editing=True)
    forms.fill(fields, row)
    saved = request.query_params.get("saved") == "1"
    return await _form_page(request, tx, principal, resource, fields, row, {}, saved=saved)


@router.post("/config/{name}/{item_id}")
async def config_update(
    name: str,
    item_id: uuid.UUID,
    request: Request,
    principal: Principal = WRITE_CONFIG,
    tx: Tx = TX,
):
    resource = _resource(name)
    body, fields, errors = forms.parse_form(resource, dict(await text_form(request)), editing=True)
    row: dict[str, Any] | None = None
    if body is not None:
        try:
            await config.check_destination(resource, body, runtime_of(request).settings)
            await attempt(
                tx, config.update(tx, principal, resource, item_id, body, _secret_key(request))
            )
        except AppError as exc:
            errors = {"__all__": f"{exc.message} ({exc.code})"}
        else:
            return RedirectResponse(f"/config/{name}/{item_id}?saved=1", status_code=303)
    row = (await config.get(tx, resource, item_id)).model_dump()
    return await _form_page(request, tx, principal, resource, fields, row, errors, status=400)


@router.post("/config/{name}/{item_id}/delete")
async def config_delete(
    name: str,
    item_id: uuid.UUID,
    request: Request,
    principal: Principal = WRITE_CONFIG,
    tx: Tx = TX,
):
    resource = _resource(name)
    try:
        await attempt(tx, config.delete(tx, principal, resource, item_id))
    except AppError as exc:
        return render(request, "_flash.html", principal, message=exc.message, ok=False)
    return Response(status_code=204, headers={"HX-Redirect": f"/config/{name}"})


@router.post("/config/sources/{item_id}/rotate-key")
async def source_rotate(
    item_id: uuid.UUID,
    request: Request,
    principal: Principal = Depends(page_requires(Permission.secrets_write)),
    tx: Tx = TX,
):
    api_key = await attempt(tx, config.rotate_source_key(tx, principal, item_id))
    row = await config.get(tx, RESOURCES["sources"], item_id)
    return render(
        request,
        "secret_once.html",
        principal,
        resource=RESOURCES["sources"],
        row=row,
        api_key=api_key,
    )


@router.post("/config/buyers/{item_id}/import-areas")
async def import_areas(
    item_id: uuid.UUID, request: Request, principal: Principal = WRITE_CONFIG, tx: Tx = TX
):
    form = await text_form(request)
    try:
        market_id = uuid.UUID(str(form.get("market_id", "")))
        result = await attempt(
            tx,
            config.import_service_areas(
                tx,
                principal,
                item_id,
                market_id,
                str(form.get("csv", "")),
                replace=form.get("replace") is not None,
            ),
        )
        message = (
            f"Imported {result['inserted']} new area(s), {result['skipped']} already present"
            + (f", {result['removed']} removed" if result["removed"] else "")
        )
        ok = True
    except ValueError:
        message, ok = "choose a market", False
    except AppError as exc:
        lines = exc.details.get("lines") or []
        message = exc.message + "".join(f"; line {e['line']}: {e['message']}" for e in lines[:10])
        ok = False
    return render(request, "_flash.html", principal, message=message, ok=ok)


_API_PREFIXES = ("/v1/", "/api/", "/health", "/ready", "/openapi.json", "/docs")


# What a page says is missing, from the error's code (`buyer_not_found` → "buyer").
_MISSING = {"icp": "ICP", "mail": "message"}


def _missing(exc: NotFound) -> str:
    what = exc.code.removesuffix("_not_found")
    return _MISSING.get(what, what.replace("_", " "))


def install(app) -> None:
    """Mount static files; pages get HTML errors and login redirects, the API keeps JSON."""
    from leadflood.core.errors import app_error_response
    from leadflood.web.session import LoginRequired, login_redirect

    app.mount("/static", static, name="static")

    async def on_login_required(request: Request, exc: LoginRequired) -> Response:
        return login_redirect(request, exc)

    async def on_app_error(request: Request, exc: AppError) -> Response:
        if request.url.path.startswith(_API_PREFIXES):
            return app_error_response(exc)
        principal = getattr(request.state, "principal", None)
        if isinstance(exc, NotFound):
            return render(request, "not_found.html", principal, status=404, what=_missing(exc))
        return render(request, "error.html", principal, status=exc.status, error=exc)

    app.add_exception_handler(LoginRequired, on_login_required)
    app.add_exception_handler(AppError, on_app_error)
