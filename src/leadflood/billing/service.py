"""Billing rules: prepaid balances on a ledger, postpaid invoices, lead returns."""

from __future__ import annotations

import csv
import io
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from leadflood.billing import repository as repo
from leadflood.core.errors import BadRequest, Conflict, NotFound
from leadflood.core.principal import Principal
from leadflood.core.rows import as_fields
from leadflood.core.security import hash_api_key, new_api_key
from leadflood.core.status import BillingStatus, InvoiceStatus, LeadStatus, ReturnStatus
from leadflood.core.uow import Tx
from leadflood.routing.service import capacity_may_have_opened


def _buyer_missing() -> NotFound:
    return NotFound("buyer_not_found", "no buyer with this id")


# ---- balances and the ledger --------------------------------------------------------------


async def account(tx: Tx, buyer_id: uuid.UUID, limit: int = 200) -> dict[str, Any]:
    buyer = await repo.buyer(tx, buyer_id)
    if buyer is None:
        raise _buyer_missing()
    entries = await repo.statement(tx, buyer_id, limit)
    return {
        **as_fields(buyer),
        "available_cents": buyer.balance_cents - buyer.reserved_cents,
        "ledger": entries,
    }


async def overview(tx: Tx) -> list[repo.BuyerBalance]:
    return await repo.buyers_overview(tx)


async def top_up(
    tx: Tx,
    principal: Principal | None,
    buyer_id: uuid.UUID,
    amount_cents: int,
    reference: str,
    idempotency_key: str | None = None,
) -> dict[str, Any]:
    if amount_cents <= 0:
        raise BadRequest("invalid_amount", "a top-up is a positive amount of cents")
    entry = _Entry("top_up", amount_cents, "platform:topups", reference or "top-up")
    return await _post(tx, principal, buyer_id, entry, idempotency_key)


async def adjust(
    tx: Tx,
    principal: Principal | None,
    buyer_id: uuid.UUID,
    delta_cents: int,
    reason: str,
    idempotency_key: str | None = None,
) -> dict[str, Any]:
    if delta_cents == 0 or not reason.strip():
        raise BadRequest("invalid_adjustment", "a non-zero amount and a reason are required")
    entry = _Entry("adjustment", delta_cents, "platform:adjustments", reason)
    return await _post(tx, principal, buyer_id, entry, idempotency_key)


@dataclass(frozen=True, slots=True)
class _Entry:
    kind: str
    delta: int
    counter: str  # the account that moves the other way
    description: str


async def _post(
    tx: Tx,
    principal: Principal | None,
    buyer_id: uuid.UUID,
    entry: _Entry,
    idempotency_key: str | None,
) -> dict[str, Any]:
    kind, delta, counter, description = entry.kind, entry.delta, entry.counter, entry.description
    if await repo.buyer(tx, buyer_id) is None:
        raise _buyer_missing()
    posted = await repo.post(
        tx,
        kind=kind,
        buyer_id=buyer_id,
        delta_cents=delta,
        counter_account=counter,
        description=description,
        idempotency_key=f"{kind}:{buyer_id}:{idempotency_key}" if idempotency_key else None,
        created_by=principal.user_id if principal else None,
    )
    if posted.transaction_id is not None:
        await tx.audit(
            principal,
            kind,
            "buyer",
            buyer_id,
            {"delta_cents": delta, "description": description},
        )
        if delta > 0:
            await capacity_may_have_opened(tx)
    buyer = await repo.buyer(tx, buyer_id)
    assert buyer is not None
    return {
        "transaction_id": posted.transaction_id,
        "replayed": posted.transaction_id is None,
        "balance_cents": buyer.balance_cents,
    }


async def rotate_buyer_key(tx: Tx, principal: Principal | None, buyer_id: uuid.UUID) -> str:
    """The key a buyer files returns with (`POST /api/returns`); shown once."""
    key = new_api_key("lfbuy")
    if not await repo.set_buyer_key(tx, buyer_id, hash_api_key(key)):
        raise _buyer_missing()
    await tx.audit(principal, "rotate_api_key", "buyer", buyer_id, {"api_key": "[rotated]"})
    return key


async def buyer_for_key(tx: Tx, key: str) -> uuid.UUID | None:
    return await repo.buyer_by_key_hash(tx, hash_api_key(key))


# ---- invoices ---------------------------------------------------------------------------


def month_bounds(period: str) -> tuple[datetime, datetime]:
    try:
        start = datetime.strptime(period, "%Y-%m").replace(tzinfo=UTC)
    except ValueError:
        raise BadRequest("invalid_period", "period is YYYY-MM") from None
    end = (start + timedelta(days=32)).replace(day=1)
    return start, end


async def invoice_period(tx: Tx, period: str) -> list[dict[str, Any]]:
    """Invoice every postpaid buyer for the month: one line per delivered, billable lead,
    never twice. Re-running adds only leads not yet invoiced (usually none: a no-op)."""
    start, end = month_bounds(period)
    results = []
    buyers = await repo.postpaid_buyers(tx)
    for buyer in buyers:
        invoice = await repo.open_invoice(tx, buyer, start, end)
        if invoice.status != InvoiceStatus.draft:
            results.append(
                {
                    "invoice_id": invoice.id,
                    "buyer_id": buyer.id,
                    "added": 0,
                    "status": invoice.status,
                }
            )
            continue
        added = await repo.add_lines(tx, invoice.id, buyer.id, start, end)
        current = await repo.invoice(tx, invoice.id)
        assert current is not None
        if not current.lines:
            # Nothing to bill: the draft opened above never becomes visible.
            await repo.drop_empty_draft(tx, invoice.id)
            continue
        results.append(
            {
                "invoice_id": invoice.id,
                "buyer_id": buyer.id,
                "added": added,
                "lines": len(current.lines),
                "total_cents": current.total_cents,
                "status": current.status,
            }
        )
    return results


async def invoices(tx: Tx, buyer_id: uuid.UUID | None = None) -> list[repo.InvoiceSummary]:
    return await repo.invoices(tx, buyer_id)


async def invoice(tx: Tx, invoice_id: uuid.UUID) -> repo.Invoice:
    found = await repo.invoice(tx, invoice_id)
    if found is None:
        raise NotFound("invoice_not_found", "no invoice with this id")
    return found


async def set_invoice_status(
    tx: Tx, principal: Principal | None, invoice_id: uuid.UUID, status: str
) -> repo.Invoice:
    if status not in (InvoiceStatus.issued, InvoiceStatus.paid, InvoiceStatus.void):
        raise BadRequest("invalid_status", "an invoice can be issued, paid or voided")
    current = await repo.invoice(tx, invoice_id)
    if current is None:
        raise NotFound("invoice_not_found", "no invoice with this id")
    if not await repo.set_invoice_status(tx, invoice_id, status):
        raise Conflict("invalid_transition", f"a {current.status} invoice cannot become {status}")
    released = await repo.release_lines(tx, invoice_id) if status == InvoiceStatus.void else 0
    await tx.audit(principal, status, "invoice", invoice_id, {"released_leads": released})
    return await invoice(tx, invoice_id)


# ---- returns ----------------------------------------------------------------------------


async def request_return(
    tx: Tx,
    lead_id: uuid.UUID,
    reason: str,
    *,
    via: str,
    buyer_id: uuid.UUID | None = None,
    principal: Principal | None = None,
    note: str = "",
) -> repo.LeadReturn:
    """A buyer (with its key) or an admin returns a delivered lead inside the offer's
    return window, unless the buyer's return rate would pass its cap."""
    if not reason.strip():
        raise BadRequest("reason_required", "say why the lead is returned")
    lead = await repo.lead_for_return(tx, lead_id)
    if lead is None or (buyer_id is not None and lead.buyer_id != buyer_id):
        raise NotFound("lead_not_found", "no lead delivered to this buyer with this id")
    if lead.status != LeadStatus.delivered or lead.delivered_at is None or lead.buyer_id is None:
        raise Conflict("not_returnable", f"the lead is {lead.status}, not delivered")
    window = timedelta(days=lead.return_window_days)
    if lead.delivered_at + window < datetime.now(UTC):
        raise Conflict(
            "return_window_closed",
            f"returns close {lead.return_window_days} day(s) after delivery",
        )
    if lead.max_return_rate is not None:
        returned, delivered = await repo.return_rate(tx, lead.buyer_id)
        rate = (returned + 1) / max(delivered, 1)
        if rate > float(lead.max_return_rate):
            raise Conflict(
                "return_rate_exceeded",
                f"this would return {rate:.0%} of the last 30 days' leads; "
                f"the cap is {float(lead.max_return_rate):.0%}",
            )
    created = await repo.insert_return(
        tx,
        {
            "lead_id": lead_id,
            "buyer_id": lead.buyer_id,
            "reason": reason.strip()[:500],
            "note": note[:2000],
            "requested_via": via,
            "requested_by": principal.user_id if principal else None,
        },
    )
    if created is None:
        raise Conflict("already_returned", "a return for this lead exists")
    return created


async def decide_return(
    tx: Tx,
    principal: Principal | None,
    return_id: uuid.UUID,
    accept: bool,
    note: str | None = None,
) -> repo.LeadReturn:
    """Accepting credits the price (prepaid: back on the balance; postpaid: a credit if
    already invoiced, otherwise the lead just never gets invoiced) and marks the lead
    returned / credited. Deciding twice is refused."""
    found = await repo.lock_return(tx, return_id)
    if found is None:
        raise NotFound("return_not_found", "no return with this id")
    if found.status != ReturnStatus.pending:
        raise Conflict("already_decided", f"the return was {found.status}")
    credit = None
    if accept:
        lead = await repo.lead_for_return(tx, found.lead_id)
        assert lead is not None
        price = lead.price_cents or 0
        charged = lead.payment_method == "prepaid" or lead.billing_status == BillingStatus.invoiced
        if not await repo.mark_returned(tx, found.lead_id):
            raise Conflict("not_returnable", f"the lead is {lead.status}")
        if charged and price > 0:
            posted = await repo.post(
                tx,
                kind="return_credit",
                buyer_id=found.buyer_id,
                delta_cents=price,
                counter_account="platform:revenue",
                description=f"return: {found.reason}",
                lead_id=found.lead_id,
                idempotency_key=f"credit:return:{return_id}",
                created_by=principal.user_id if principal else None,
            )
            credit = posted.transaction_id
        # The source's payout for this lead is taken back too (issue 17).
        await repo.reverse_payout(tx, found.lead_id, principal.user_id if principal else None)
    await repo.decide_return(
        tx,
        return_id,
        "accepted" if accept else "rejected",
        note,
        principal.user_id if principal else None,
        credit,
    )
    await tx.audit(
        principal,
        "accept_return" if accept else "reject_return",
        "lead",
        found.lead_id,
        {"return_id": str(return_id), "credit_transaction_id": str(credit) if credit else None},
    )
    decided = await repo.lock_return(tx, return_id)
    assert decided is not None  # locked and updated above
    return decided


async def returns(tx: Tx, status: str | None = None) -> list[repo.ReturnListItem]:
    return await repo.returns(tx, status)


PROFIT_GROUPS = ("day", "source", "buyer", "offer")


@dataclass(frozen=True, slots=True, kw_only=True)
class ProfitLine:
    """One group's figures: revenue is sales less accepted returns; margin is revenue less
    net payouts to sources."""

    key: str
    label: str
    leads: int
    sold: int
    revenue_cents: int
    payouts_cents: int
    margin_cents: int
    returned: int
    return_rate: float | None


async def profit_report(
    tx: Tx, group_by: str, since: datetime, until: datetime
) -> list[ProfitLine]:
    if group_by not in PROFIT_GROUPS:
        raise BadRequest(
            "invalid_group_by",
            f"group_by is one of {', '.join(PROFIT_GROUPS)}",
            details={"field": "group_by"},
        )
    if until <= since:
        raise BadRequest("invalid_period", "`to` must be after `from`", details={"field": "to"})
    lines = []
    for row in await repo.profit(tx, group_by, since, until):
        revenue = row.gross_cents - row.returned_cents
        lines.append(
            ProfitLine(
                key=row.key,
                label=row.label,
                leads=row.leads,
                sold=row.sold,
                revenue_cents=revenue,
                payouts_cents=row.payouts_cents,
                margin_cents=revenue - row.payouts_cents,
                returned=row.returned,
                return_rate=row.returned / row.sold if row.sold else None,
            )
        )
    return lines


def profit_csv(lines: list[ProfitLine]) -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(
        ["key", "label", "leads", "sold", "revenue", "payouts", "margin", "returned", "return_rate"]
    )
    for line in lines:
        writer.writerow(
            [
                line.key,
                # A label starting with = + - @ would be a formula in a spreadsheet.
                ("'" + line.label) if line.label[:1] in "=+-@" else line.label,
                line.leads,
                line.sold,
                f"{line.revenue_cents / 100:.2f}",
                f"{line.payouts_cents / 100:.2f}",
                f"{line.margin_cents / 100:.2f}",
                line.returned,
                "" if line.return_rate is None else f"{line.return_rate:.4f}",
            ]
        )
    return out.getvalue()
