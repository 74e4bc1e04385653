"""Billing API: balances and ledger, top-ups, invoices, returns (admin and buyer)."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, time, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, ConfigDict, Field, StringConstraints
from starlette.responses import JSONResponse, Response

from leadflood.auth.dependencies import call_as
from leadflood.auth.policy import Permission
from leadflood.billing import responses as out
from leadflood.billing import service
from leadflood.core.api import Items
from leadflood.core.boundary import TX, Call
from leadflood.core.errors import Unauthorized
from leadflood.core.idempotency import idempotent
from leadflood.core.principal import Principal
from leadflood.core.security import presented_api_key
from leadflood.core.uow import Tx

router = APIRouter(tags=["billing"])
BILLING = call_as(Permission.billing)
Reason = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=500)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class TopUpIn(Strict):
    amount_cents: int = Field(gt=0, le=100_000_000)
    reference: str = ""


class AdjustmentIn(Strict):
    delta_cents: int = Field(ge=-100_000_000, le=100_000_000)
    reason: Reason


class InvoiceRunIn(Strict):
    period: Annotated[str, StringConstraints(pattern=r"^\d{4}-\d{2}$")]


class ReturnIn(Strict):
    reason: Reason
    note: str = ""


class BuyerReturnIn(ReturnIn):
    lead_id: uuid.UUID


class DecisionIn(Strict):
    note: str | None = None


@router.get(
    "/v1/admin/reports/profit",
    summary="Profit by day, source, buyer or offer: leads, sold, revenue, payouts, margin, "
    "return rate (format=csv for a spreadsheet)",
    response_model=Items[out.ProfitLine],
)
async def profit(
    group_by: str = "day",
    from_: date | None = Query(None, alias="from"),
    to: date | None = None,
    format: str = "json",
    call: Call = BILLING,
):
    until = datetime.combine(to or datetime.now(UTC).date(), time.min, UTC) + timedelta(days=1)
    since = datetime.combine(from_, time.min, UTC) if from_ else until - timedelta(days=30)
    lines = await service.profit_report(call.tx, group_by, since, until)
    if format == "csv":
        return Response(
            service.profit_csv(lines),
            media_type="text/csv",
            headers={"Content-Disposition": f'attachment; filename="profit-by-{group_by}.csv"'},
        )
    return {"items": lines}


@router.get(
    "/v1/admin/billing/buyers",
    summary="Every buyer's balance, reservations, returns",
    response_model=Items[out.BuyerBalance],
)
async def buyers(call: Call = BILLING) -> dict:
    return {"items": await service.overview(call.tx)}


@router.get(
    "/v1/admin/billing/buyers/{buyer_id}",
    summary="A buyer's balance and ledger",
    response_model=out.Account,
)
async def account(buyer_id: uuid.UUID, call: Call = BILLING) -> dict:
    return await service.account(call.tx, buyer_id)


@router.post(
    "/v1/admin/billing/buyers/{buyer_id}/top-ups",
    status_code=201,
    summary="Add funds",
    response_model=out.Posted,
)
async def top_up(buyer_id: uuid.UUID, body: TopUpIn, call: Call = BILLING) -> dict:
    key = call.request.headers.get("idempotency-key")
    return await service.top_up(
        call.tx, call.principal, buyer_id, body.amount_cents, body.reference, key
    )


@router.post(
    "/v1/admin/billing/buyers/{buyer_id}/adjustments",
    status_code=201,
    summary="Correct a balance (signed cents, with a reason)",
    response_model=out.Posted,
)
async def adjust(buyer_id: uuid.UUID, body: AdjustmentIn, call: Call = BILLING) -> dict:
    key = call.request.headers.get("idempotency-key")
    return await service.adjust(
        call.tx, call.principal, buyer_id, body.delta_cents, body.reason, key
    )


@router.post(
    "/v1/admin/billing/buyers/{buyer_id}/rotate-key",
    summary="Buyer API key, once",
    response_model=out.BuyerKey,
)
async def rotate_key(buyer_id: uuid.UUID, call: Call = BILLING) -> JSONResponse:
    async def work() -> dict:
        key = await service.rotate_buyer_key(call.tx, call.principal, buyer_id)
        return {"buyer_id": buyer_id, "api_key": key}

    return await call.idempotent(work())


@router.get(
    "/v1/admin/billing/invoices",
    summary="Invoices, newest period first",
    response_model=Items[out.InvoiceListItem],
)
async def invoices(buyer_id: uuid.UUID | None = None, call: Call = BILLING) -> dict:
    return {"items": await service.invoices(call.tx, buyer_id)}


@router.post(
    "/v1/admin/billing/invoices",
    summary="Invoice postpaid buyers for a month",
    response_model=out.InvoiceRun,
)
async def invoice_run(body: InvoiceRunIn, call: Call = BILLING) -> JSONResponse:
    async def work() -> dict:
        invoices = await service.invoice_period(call.tx, body.period)
        return {"period": body.period, "invoices": invoices}

    return await call.idempotent(work())


@router.get(
    "/v1/admin/billing/invoices/{invoice_id}",
    summary="An invoice with its lines",
    response_model=out.Invoice,
)
async def invoice(invoice_id: uuid.UUID, call: Call = BILLING) -> Any:
    return await service.invoice(call.tx, invoice_id)


@router.post(
    "/v1/admin/billing/invoices/{invoice_id}/{action}",
    summary="issue, pay or void",
    response_model=out.Invoice,
)
async def invoice_action(invoice_id: uuid.UUID, action: str, call: Call = BILLING) -> Any:
    status = {"issue": "issued", "pay": "paid", "void": "void"}.get(action, action)
    return await call.idempotent(
        service.set_invoice_status(call.tx, call.principal, invoice_id, status),
    )


@router.get(
    "/v1/admin/billing/returns",
    summary="The returns queue",
    response_model=Items[out.ReturnListItem],
)
async def returns(status: str | None = None, call: Call = BILLING) -> dict:
    return {"items": await service.returns(call.tx, status)}


@router.post(
    "/v1/admin/leads/{lead_id}/return",
    status_code=201,
    summary="Return a lead",
    response_model=out.Return,
)
async def admin_return(lead_id: uuid.UUID, body: ReturnIn, call: Call = BILLING) -> JSONResponse:
    return await call.idempotent(
        service.request_return(
            call.tx,
            lead_id,
            body.reason,
            via="admin",
            principal=call.principal,
            note=body.note,
        ),
    )


@router.post(
    "/v1/admin/billing/returns/{return_id}/accept",
    summary="Accept: credit the price",
    response_model=out.Return,
)
async def accept(
    return_id: uuid.UUID,
    body: DecisionIn | None = None,
    call: Call = BILLING,
) -> JSONResponse:
    return await _decide(call.request, call.tx, call.principal, return_id, True, body)


@router.post(
    "/v1/admin/billing/returns/{return_id}/reject",
    summary="Reject a return",
    response_model=out.Return,
)
async def reject(
    return_id: uuid.UUID,
    body: DecisionIn | None = None,
    call: Call = BILLING,
) -> JSONResponse:
    return await _decide(call.request, call.tx, call.principal, return_id, False, body)


async def _decide(
    request: Request,
    tx: Tx,
    principal: Principal,
    return_id: uuid.UUID,
    accepted: bool,
    body: DecisionIn | None,
) -> JSONResponse:
    note = (body or DecisionIn()).note
    return await idempotent(
        request,
        tx,
        principal,
        service.decide_return(tx, principal, return_id, accepted, note),
    )


@router.post(
    "/api/returns",
    status_code=201,
    tags=["buyers"],
    summary="A buyer returns a lead",
    response_model=out.Return,
)
async def buyer_return(body: BuyerReturnIn, request: Request, tx: Tx = TX) -> Any:
    """Authenticated by the buyer's API key (`X-Api-Key` or `Authorization: Bearer`)."""
    key = presented_api_key(request.headers.get("authorization"), request.headers.get("x-api-key"))
    buyer_id = await service.buyer_for_key(tx, key) if key else None
    if buyer_id is None:
        raise Unauthorized("invalid_api_key", "a valid buyer API key is required")
    return await service.request_return(
        tx,
        body.lead_id,
        body.reason,
        via="buyer",
        buyer_id=buyer_id,
        note=body.note,
    )
