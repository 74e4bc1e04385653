"""Admin API under /v1/admin: configuration CRUD, leads, deliveries, audit.

Routes are generated per declared resource (admin/resources.py) so every entity gets
the same verbs, validation and permissions. No `from __future__ import annotations`
here: FastAPI must see the generated body models as real classes.
"""

import uuid
from datetime import datetime
from typing import Any

from fastapi import APIRouter, Body, Depends, Query, Request, Response
from starlette.responses import JSONResponse

from leadflood.admin import config_service as config
from leadflood.admin import lead_service
from leadflood.admin.resources import RESOURCES, Resource
from leadflood.admin.schemas import ServiceAreaImport
from leadflood.auth import repository as auth_repo
from leadflood.auth.dependencies import requires
from leadflood.auth.policy import Permission
from leadflood.auth.service import Principal
from leadflood.core.errors import BadRequest
from leadflood.core.idempotency import idempotent
from leadflood.core.request_guard import MAX_OFFSET
from leadflood.core.runtime import runtime_of

router = APIRouter(prefix="/v1/admin", tags=["admin"])

READ = Depends(requires(Permission.config_read))
WRITE = Depends(requires(Permission.config_write))


def _secret_key(request: Request) -> str:
    return runtime_of(request).settings.secret_key.get_secret_value()


def _filters(resource: Resource, request: Request) -> dict[str, Any]:
    filters: dict[str, Any] = {}
    for name, value in request.query_params.items():
        if name in ("limit", "offset"):
            continue
        if name not in resource.filters:
            raise BadRequest("unknown_filter", f"cannot filter {resource.name} by {name}")
        if name.endswith("_id"):
            try:
                filters[name] = uuid.UUID(value)
            except ValueError:
                raise BadRequest("invalid_filter", f"{name} must be a UUID") from None
        elif name == "active":
            filters[name] = value.lower() in ("1", "true", "yes")
        else:
            filters[name] = value
    return filters


def _register(resource: Resource) -> None:
    create_model, patch_model = resource.create, resource.patch
    path = f"/{resource.name}"

    async def list_items(
        request: Request,
        limit: int = Query(100, ge=1, le=500),
        offset: int = Query(0, ge=0, le=MAX_OFFSET),
        _: Principal = READ,
    ) -> dict:
        async with runtime_of(request).db.connect() as conn:
            rows, total = await config.list_(
                conn, resource, _filters(resource, request), limit=limit, offset=offset
            )
        return {"items": [config.public(resource, r) for r in rows], "total": total}

    async def create_item(
        request: Request, body: create_model = Body(...), principal: Principal = WRITE
    ) -> JSONResponse:
        await config.check_destination(resource, body, runtime_of(request).settings)

        async def work() -> dict:
            async with runtime_of(request).db.transaction() as conn:
                row, extras = await config.create(
                    conn, principal, resource, body, _secret_key(request)
                )
            return {**config.public(resource, row), **extras}

        # A retried create with the same Idempotency-Key makes one row, not two.
        return await idempotent(request, principal.user_id, 201, work)

    async def get_item(item_id: uuid.UUID, request: Request, _: Principal = READ) -> dict:
        async with runtime_of(request).db.connect() as conn:
            return config.public(resource, await config.get(conn, resource, item_id))

    async def update_item(
        item_id: uuid.UUID,
        request: Request,
        body: patch_model = Body(...),
        principal: Principal = WRITE,
    ) -> dict:
        await config.check_destination(resource, body, runtime_of(request).settings)
        async with runtime_of(request).db.transaction() as conn:
            row = await config.update(
                conn, principal, resource, item_id, body, _secret_key(request)
            )
        return config.public(resource, row)

    async def delete_item(
        item_id: uuid.UUID, request: Request, principal: Principal = WRITE
    ) -> Response:
        async with runtime_of(request).db.transaction() as conn:
            await config.delete(conn, principal, resource, item_id)
        return Response(status_code=204)

    label = resource.entity.replace("_", " ")
    router.add_api_route(
        path, list_items, methods=["GET"], summary=f"List {resource.title.lower()}"
    )
    router.add_api_route(
        path, create_item, methods=["POST"], status_code=201, summary=f"Create a {label}"
    )
    router.add_api_route(f"{path}/{{item_id}}", get_item, methods=["GET"], summary=f"Get a {label}")
    router.add_api_route(
        f"{path}/{{item_id}}", update_item, methods=["PATCH"], summary=f"Change a {label}"
    )
    router.add_api_route(
        f"{path}/{{item_id}}",
        delete_item,
        methods=["DELETE"],
        status_code=204,
        summary=f"Delete a {label} (409 in_use when referenced)",
    )


# Specific routes first, so /sources/{id}/rotate-key is not shadowed.
@router.post("/sources/{source_id}/rotate-key", summary="Issue a new source API key (shown once)")
async def rotate_source_key(
    source_id: uuid.UUID,
    request: Request,
    principal: Principal = Depends(requires(Permission.secrets_write)),
) -> JSONResponse:
    async def work() -> dict:
        async with runtime_of(request).db.transaction() as conn:
            api_key = await config.rotate_source_key(conn, principal, source_id)
        return {"source_id": source_id, "api_key": api_key}

    return await idempotent(request, principal.user_id, 200, work)


@router.post(
    "/buyers/{buyer_id}/service-areas/import",
    summary="Bulk-import a buyer's postal codes (CSV: postal_code[,city]) in one market",
)
async def import_service_areas(
    buyer_id: uuid.UUID, body: ServiceAreaImport, request: Request, principal: Principal = WRITE
) -> JSONResponse:
    async def work() -> dict:
        async with runtime_of(request).db.transaction() as conn:
            return await config.import_service_areas(
                conn, principal, buyer_id, body.market_id, body.csv, replace=body.replace
            )

    return await idempotent(request, principal.user_id, 200, work)


@router.get("/leads", summary="Search leads (filters, newest first, cursor pagination)")
async def search_leads(
    request: Request,
    status: str | None = None,
    offer_id: uuid.UUID | None = None,
    source_id: uuid.UUID | None = None,
    buyer_id: uuid.UUID | None = None,
    q: str | None = Query(None, max_length=200, description="email, phone, last name or id"),
    created_from: datetime | None = None,
    created_to: datetime | None = None,
    cursor: str | None = None,
    limit: int = 50,
    _: Principal = Depends(requires(Permission.leads_read)),
) -> dict:
    return await lead_service.search(
        runtime_of(request),
        lead_service.LeadQuery(
            status, offer_id, source_id, buyer_id, q, created_from, created_to, cursor, limit
        ),
    )


@router.get("/leads/{lead_id}", summary="A lead: fields, validation, routing trace, delivery")
async def lead_detail(
    lead_id: uuid.UUID,
    request: Request,
    _: Principal = Depends(requires(Permission.leads_read)),
) -> dict:
    return await lead_service.detail(runtime_of(request), lead_id)


@router.get("/leads/{lead_id}/routing", summary="Routing decision trace")
async def routing_trace(
    lead_id: uuid.UUID,
    request: Request,
    _: Principal = Depends(requires(Permission.leads_read)),
) -> dict:
    return {
        "lead_id": lead_id,
        "decisions": await lead_service.routing(runtime_of(request), lead_id),
    }


@router.get("/leads/{lead_id}/delivery", summary="Delivery with every attempt")
async def lead_delivery(
    lead_id: uuid.UUID,
    request: Request,
    _: Principal = Depends(requires(Permission.leads_read)),
) -> dict:
    return {"lead_id": lead_id, **await lead_service.delivery(runtime_of(request), lead_id)}


@router.get("/deliveries", summary="Deliveries, newest first (filter by status, buyer)")
async def list_deliveries(
    request: Request,
    status: str | None = None,
    buyer_id: uuid.UUID | None = None,
    limit: int = Query(100, ge=1, le=500),
    offset: int = Query(0, ge=0, le=MAX_OFFSET),
    _: Principal = Depends(requires(Permission.leads_read)),
) -> dict:
    items = await lead_service.deliveries(
        runtime_of(request), status=status, buyer_id=buyer_id, limit=limit, offset=offset
    )
    return {"items": items}


@router.post("/leads/{lead_id}/redeliver", summary="New round of delivery attempts")
async def redeliver(
    lead_id: uuid.UUID,
    request: Request,
    principal: Principal = Depends(requires(Permission.leads_act)),
) -> JSONResponse:
    return await idempotent(
        request,
        principal.user_id,
        200,
        lambda: lead_service.redeliver(runtime_of(request), principal, lead_id),
    )


@router.post("/leads/{lead_id}/reroute", summary="Route an unrouted lead again now")
async def reroute(
    lead_id: uuid.UUID,
    request: Request,
    principal: Principal = Depends(requires(Permission.leads_act)),
) -> JSONResponse:
    return await idempotent(
        request,
        principal.user_id,
        200,
        lambda: lead_service.reroute(runtime_of(request), principal, lead_id),
    )


@router.get("/dashboard", summary="Today's funnel and per-day counts")
async def dashboard(
    request: Request,
    days: int = Query(14, ge=1, le=90),
    _: Principal = Depends(requires(Permission.leads_read)),
) -> dict:
    return await lead_service.dashboard(runtime_of(request), days=days)


@router.get("/audit", summary="Audit log, newest first")
async def audit_log(
    request: Request,
    entity_type: str | None = None,
    entity_id: uuid.UUID | None = None,
    limit: int = Query(100, ge=1, le=500),
    _: Principal = Depends(requires(Permission.audit_read)),
) -> dict:
    async with runtime_of(request).db.connect() as conn:
        rows = await auth_repo.list_audit(
            conn, entity_type=entity_type, entity_id=entity_id, limit=limit
        )
    return {"items": rows}


for _resource in RESOURCES.values():
    _register(_resource)
