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
from leadflood.admin import responses as out
from leadflood.admin.resources import RESOURCES, Resource
from leadflood.admin.responses import RESOURCE_CREATED, RESOURCE_MODELS, RESOURCE_PAGES
from leadflood.admin.schemas import ServiceAreaImport, Strict
from leadflood.auth import repository as auth_repo
from leadflood.auth.dependencies import call_as, requires
from leadflood.auth.policy import Permission
from leadflood.core.api import ApiModel, Items
from leadflood.core.boundary import Call
from leadflood.core.errors import BadRequest
from leadflood.core.principal import Principal
from leadflood.core.request_guard import MAX_OFFSET
from leadflood.core.runtime import runtime_of
from leadflood.delivery import buyer_test

router = APIRouter(prefix="/v1/admin", tags=["admin"])

READ = call_as(Permission.config_read)
WRITE = call_as(Permission.config_write)


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
        limit: int = Query(100, ge=1, le=500),
        offset: int = Query(0, ge=0, le=MAX_OFFSET),
        call: Call = READ,
    ) -> dict:
        rows, total = await config.list_(
            call.tx, resource, _filters(resource, call.request), limit=limit, offset=offset
        )
        return {"items": rows, "total": total}

    # The body models are built per resource at startup: no static type to name.
    async def create_item(
        body: create_model = Body(...),  # type: ignore[valid-type]
        call: Call = WRITE,
    ) -> JSONResponse:
        # Before the unit's first statement: resolving the host is a network call.
        await config.check_destination(resource, body, call.settings)

        async def work() -> dict:
            row, extras = await config.create(
                call.tx, call.principal, resource, body, _secret_key(call.request)
            )
            return {**row.model_dump(), **extras}

        # A retried create with the same Idempotency-Key makes one row, not two.
        return await call.idempotent(work())

    async def get_item(item_id: uuid.UUID, call: Call = READ) -> ApiModel:
        return await config.get(call.tx, resource, item_id)

    async def update_item(
        item_id: uuid.UUID,
        body: patch_model = Body(...),  # type: ignore[valid-type]
        call: Call = WRITE,
    ) -> ApiModel:
        await config.check_destination(resource, body, call.settings)
        return await config.update(
            call.tx, call.principal, resource, item_id, body, _secret_key(call.request)
        )

    async def delete_item(item_id: uuid.UUID, call: Call = WRITE) -> Response:
        await config.delete(call.tx, call.principal, resource, item_id)
        return Response(status_code=204)

    label = resource.entity.replace("_", " ")
    one, item = RESOURCE_MODELS[resource.name], f"{path}/{{item_id}}"
    for route_path, endpoint, method, status, summary, model in (
        (
            path,
            list_items,
            "GET",
            None,
            f"List {resource.title.lower()}",
            RESOURCE_PAGES[resource.name],
        ),
        (path, create_item, "POST", 201, f"Create a {label}", RESOURCE_CREATED[resource.name]),
        (item, get_item, "GET", None, f"Get a {label}", one),
        (item, update_item, "PATCH", None, f"Change a {label}", one),
        (item, delete_item, "DELETE", 204, f"Delete a {label} (409 in_use when referenced)", None),
    ):
        router.add_api_route(
            route_path,
            endpoint,
            methods=[method],
            status_code=status,
            summary=summary,
            response_model=model,
        )


# Specific routes first, so /sources/{id}/rotate-key is not shadowed.
@router.post(
    "/sources/{source_id}/rotate-key",
    summary="Issue a new source API key (shown once)",
    response_model=out.SourceKey,
)
async def rotate_source_key(
    source_id: uuid.UUID,
    call: Call = call_as(Permission.secrets_write),
) -> JSONResponse:
    async def work() -> dict:
        api_key = await config.rotate_source_key(call.tx, call.principal, source_id)
        return {"source_id": source_id, "api_key": api_key}

    return await call.idempotent(work())


class BuyerTestIn(Strict):
    send: bool = False  # False: only show the request (a dry run)
    offer_id: uuid.UUID | None = None  # default: the buyer's first active offer


@router.post(
    "/buyers/{buyer_id}/test",
    summary="Render the buyer's request for a sample lead; with send, post it and read the answer",
    response_model=out.BuyerTest,
)
async def test_buyer(
    buyer_id: uuid.UUID,
    request: Request,
    body: BuyerTestIn | None = None,
    principal: Principal = Depends(requires(Permission.config_write)),
) -> dict:
    # No request unit: the test reads in its own and sends with nothing held.
    body = body or BuyerTestIn()
    return await buyer_test.test_buyer(runtime_of(request), buyer_id, body.offer_id, send=body.send)


@router.post(
    "/buyers/{buyer_id}/service-areas/import",
    summary="Bulk-import a buyer's postal codes (CSV: postal_code[,city]) in one market",
    response_model=out.ServiceAreaImportOut,
)
async def import_service_areas(
    buyer_id: uuid.UUID,
    body: ServiceAreaImport,
    call: Call = WRITE,
) -> JSONResponse:
    async def work() -> dict:
        return await config.import_service_areas(
            call.tx, call.principal, buyer_id, body.market_id, body.csv, replace=body.replace
        )

    return await call.idempotent(work())


@router.get(
    "/leads",
    summary="Search leads (filters, newest first, cursor pagination)",
    response_model=out.LeadsPage,
)
async def search_leads(
    status: str | None = None,
    offer_id: uuid.UUID | None = None,
    source_id: uuid.UUID | None = None,
    buyer_id: uuid.UUID | None = None,
    q: str | None = Query(None, max_length=200, description="email, phone, last name or id"),
    created_from: datetime | None = None,
    created_to: datetime | None = None,
    cursor: str | None = None,
    limit: int = 50,
    call: Call = call_as(Permission.leads_read),
) -> dict:
    return await lead_service.search(
        call.tx,
        lead_service.LeadQuery(
            status, offer_id, source_id, buyer_id, q, created_from, created_to, cursor, limit
        ),
    )


@router.get(
    "/leads/{lead_id}",
    summary="A lead: fields, validation, routing trace, delivery",
    response_model=out.LeadDetail,
)
async def lead_detail(lead_id: uuid.UUID, call: Call = call_as(Permission.leads_read)) -> dict:
    return await lead_service.detail(call.tx, lead_id)


@router.get(
    "/leads/{lead_id}/routing", summary="Routing decision trace", response_model=out.LeadRouting
)
async def routing_trace(lead_id: uuid.UUID, call: Call = call_as(Permission.leads_read)) -> dict:
    return {
        "lead_id": lead_id,
        "decisions": await lead_service.routing(call.tx, lead_id),
    }


@router.get(
    "/leads/{lead_id}/delivery",
    summary="Delivery with every attempt",
    response_model=out.LeadDelivery,
)
async def lead_delivery(lead_id: uuid.UUID, call: Call = call_as(Permission.leads_read)) -> dict:
    return {"lead_id": lead_id, **await lead_service.delivery(call.tx, lead_id)}


@router.get(
    "/deliveries",
    summary="Deliveries, newest first (filter by status, buyer)",
    response_model=Items[out.DeliveryListItem],
)
async def list_deliveries(
    status: str | None = None,
    buyer_id: uuid.UUID | None = None,
    limit: int = Query(100, ge=1, le=500),
    offset: int = Query(0, ge=0, le=MAX_OFFSET),
    call: Call = call_as(Permission.leads_read),
) -> dict:
    items = await lead_service.deliveries(
        call.tx, status=status, buyer_id=buyer_id, limit=limit, offset=offset
    )
    return {"items": items}


@router.post(
    "/leads/{lead_id}/redeliver",
    summary="New round of delivery attempts",
    response_model=out.LeadAction,
)
async def redeliver(lead_id: uuid.UUID, call: Call = call_as(Permission.leads_act)) -> JSONResponse:
    return await call.idempotent(lead_service.redeliver(call.tx, call.principal, lead_id))


@router.post(
    "/leads/{lead_id}/reroute",
    summary="Route an unrouted lead again now",
    response_model=out.LeadAction,
)
async def reroute(lead_id: uuid.UUID, call: Call = call_as(Permission.leads_act)) -> JSONResponse:
    return await call.idempotent(lead_service.reroute(call.tx, call.principal, lead_id))


@router.get("/dashboard", summary="Today's funnel and per-day counts", response_model=out.Dashboard)
async def dashboard(
    days: int = Query(14, ge=1, le=90),
    call: Call = call_as(Permission.leads_read),
) -> dict:
    return await lead_service.dashboard(call.tx, days=days)


@router.get("/audit", summary="Audit log, newest first", response_model=Items[out.AuditEntry])
async def audit_log(
    entity_type: str | None = None,
    entity_id: uuid.UUID | None = None,
    limit: int = Query(100, ge=1, le=500),
    call: Call = call_as(Permission.audit_read),
) -> dict:
    rows = await auth_repo.list_audit(
        call.tx, entity_type=entity_type, entity_id=entity_id, limit=limit
    )
    return {"items": rows}


for _resource in RESOURCES.values():
    _register(_resource)
