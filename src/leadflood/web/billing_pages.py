"""Billing pages: balances and ledgers, top-ups, invoices (printable), the returns queue."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, time, timedelta

from fastapi import APIRouter, Depends, Request
from starlette.responses import HTMLResponse, Response

from leadflood.auth.policy import Permission
from leadflood.auth.service import Principal
from leadflood.billing import service as billing
from leadflood.core.boundary import TX
from leadflood.core.errors import AppError, NotFound
from leadflood.core.uow import Tx
from leadflood.web.pages import attempt, render
from leadflood.web.session import page_requires, text_form

router = APIRouter(include_in_schema=False, prefix="/billing")
BILLING = Depends(page_requires(Permission.billing))


def _cents(value: str) -> int:
    """'12.50' or '1250c' style input: dollars with up to two decimals."""
    text = value.strip().replace(",", "")
    negative = text.startswith("-")
    whole, _, frac = text.lstrip("+-").partition(".")
    if not whole.isdigit() or (frac and (not frac.isdigit() or len(frac) > 2)):
        raise ValueError(value)
    cents = int(whole) * 100 + int((frac + "00")[:2])
    return -cents if negative else cents


@router.get("")
async def overview(request: Request, principal: Principal = BILLING, tx: Tx = TX) -> HTMLResponse:
    return render(
        request,
        "billing/overview.html",
        principal,
        buyers=await billing.overview(tx),
    )


@router.get("/profit")
async def profit(request: Request, principal: Principal = BILLING, tx: Tx = TX) -> HTMLResponse:
    """Profit by day, source, buyer or offer, with a chart of the margin."""
    params = request.query_params
    group_by = params.get("group_by") or "day"
    until_day = _day(params.get("to")) or datetime.now(UTC).date()
    since_day = _day(params.get("from")) or until_day - timedelta(days=29)
    since = datetime.combine(since_day, time.min, UTC)
    until = datetime.combine(until_day, time.min, UTC) + timedelta(days=1)
    error, lines = None, []
    try:
        lines = await billing.profit_report(tx, group_by, since, until)
    except AppError as exc:
        error = exc.message
    top = max([abs(line.margin_cents) for line in lines] + [1])
    return render(
        request,
        "billing/profit.html",
        principal,
        lines=lines,
        group_by=group_by,
        groups=billing.PROFIT_GROUPS,
        since=since_day,
        until=until_day,
        top=top,
        error=error,
    )


def _day(text: str | None) -> date | None:
    try:
        return date.fromisoformat(text) if text else None
    except ValueError:
        return None


@router.get("/buyers/{buyer_id}")
async def account(
    buyer_id: uuid.UUID, request: Request, principal: Principal = BILLING, tx: Tx = TX
):
    data = await billing.account(tx, buyer_id)
    return render(request, "billing/account.html", principal, account=data)


@router.post("/buyers/{buyer_id}/{action}")
async def move_money(
    buyer_id: uuid.UUID, action: str, request: Request, principal: Principal = BILLING, tx: Tx = TX
):
    form = await text_form(request)
    try:
        amount = _cents(str(form.get("amount", "")))
        note = str(form.get("note", "")).strip()
        if action == "top-up":
            await attempt(tx, billing.top_up(tx, principal, buyer_id, amount, note))
        elif action == "adjust":
            await attempt(tx, billing.adjust(tx, principal, buyer_id, amount, note))
        else:
            raise NotFound("unknown_action", "top-up or adjust")
    except ValueError:
        return render(
            request, "_flash.html", principal, message="amount looks like 125.00", ok=False
        )
    except AppError as exc:
        return render(request, "_flash.html", principal, message=exc.message, ok=False)
    return Response(status_code=204, headers={"HX-Redirect": f"/billing/buyers/{buyer_id}"})


@router.get("/invoices")
async def invoices(request: Request, principal: Principal = BILLING, tx: Tx = TX) -> HTMLResponse:
    return render(
        request,
        "billing/invoices.html",
        principal,
        invoices=await billing.invoices(tx),
    )


@router.post("/invoices/run")
async def invoice_run(
    request: Request, principal: Principal = BILLING, tx: Tx = TX
) -> HTMLResponse:
    period = str((await text_form(request)).get("period", "")).strip()
    try:
        results = await billing.invoice_period(tx, period)
    except AppError as exc:
        return render(request, "_flash.html", principal, message=exc.message, ok=False)
    added = sum(r.get("added", 0) for r in results)
    message = f"{period}: {len(results)} invoice(s), {added} new line(s). Reload to see them."
    return render(request, "_flash.html", principal, message=message, ok=True)


@router.get("/invoices/{invoice_id}")
async def invoice(
    invoice_id: uuid.UUID, request: Request, principal: Principal = BILLING, tx: Tx = TX
):
    data = await billing.invoice(tx, invoice_id)
    return render(request, "billing/invoice.html", principal, invoice=data)


@router.post("/invoices/{invoice_id}/{action}")
async def invoice_action(
    invoice_id: uuid.UUID,
    action: str,
    request: Request,
    principal: Principal = BILLING,
    tx: Tx = TX,
):
    status = {"issue": "issued", "pay": "paid", "void": "void"}.get(action)
    try:
        if status is None:
            raise NotFound("unknown_action", "issue, pay or void")
        await attempt(tx, billing.set_invoice_status(tx, principal, invoice_id, status))
    except AppError as exc:
        return render(request, "_flash.html", principal, message=exc.message, ok=False)
    return Response(status_code=204, headers={"HX-Redirect": f"/billing/invoices/{invoice_id}"})


@router.get("/returns")
async def returns(request: Request, principal: Principal = BILLING, tx: Tx = TX) -> HTMLResponse:
    status = request.query_params.get("status") or "pending"
    items = await billing.returns(tx, None if status == "all" else status)
    return render(request, "billing/returns.html", principal, returns=items, shown=status)


@router.post("/returns/{return_id}/{decision}")
async def decide(
    return_id: uuid.UUID,
    decision: str,
    request: Request,
    principal: Principal = BILLING,
    tx: Tx = TX,
):
    note = str((await text_form(request)).get("note", "")).strip() or None
    try:
        if decision not in ("accept", "reject"):
            raise NotFound("unknown_action", "accept or reject")
        await attempt(
            tx, billing.decide_return(tx, principal, return_id, decision == "accept", note)
        )
    except AppError as exc:
        return render(request, "_flash.html", principal, message=exc.message, ok=False)
    return Response(status_code=204, headers={"HX-Redirect": "/billing/returns"})


@router.post("/leads/{lead_id}/return")
async def return_lead(
    lead_id: uuid.UUID, request: Request, principal: Principal = BILLING, tx: Tx = TX
):
    reason = str((await text_form(request)).get("reason", "")).strip()
    try:
        await billing.request_return(tx, lead_id, reason, via="admin", principal=principal)
    except AppError as exc:
        return render(
            request, "_flash.html", principal, message=f"{exc.message} ({exc.code})", ok=False
        )
    return render(
        request, "_flash.html", principal, message="Return filed; see the returns queue.", ok=True
    )
