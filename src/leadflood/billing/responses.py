"""Response bodies of the billing API."""

from __future__ import annotations

import uuid
from datetime import date, datetime

from leadflood.core.api import ApiModel


class BuyerMoney(ApiModel):
    id: uuid.UUID
    name: str
    payment_method: str
    currency: str
    balance_cents: int
    reserved_cents: int
    min_balance_cents: int


class BuyerBalance(BuyerMoney):
    pending_returns: int


class LedgerLine(ApiModel):
    id: uuid.UUID
    kind: str
    lead_id: uuid.UUID | None = None
    amount_cents: int
    currency: str
    description: str | None = None
    created_at: datetime
    delta_cents: int
    running_balance: int


class Account(BuyerMoney):
    max_return_rate: float | None = None
    has_api_key: bool
    ledger_balance: int
    available_cents: int
    ledger: list[LedgerLine]


class Posted(ApiModel):
    transaction_id: uuid.UUID | None = None
    replayed: bool
    balance_cents: int


class BuyerKey(ApiModel):
    buyer_id: uuid.UUID
    api_key: str | None = None  # shown once; a replay of the request answers without it


class InvoiceRunLine(ApiModel):
    invoice_id: uuid.UUID
    buyer_id: uuid.UUID
    added: int
    lines: int
    total_cents: int
    status: str


class InvoiceRun(ApiModel):
    period: str
    invoices: list[InvoiceRunLine]


class InvoiceHeader(ApiModel):
    id: uuid.UUID
    buyer_id: uuid.UUID
    buyer_name: str
    period_start: date
    period_end: date
    status: str
    currency: str
    total_cents: int
    issued_at: datetime | None = None
    due_at: datetime | None = None
    paid_at: datetime | None = None


class InvoiceListItem(InvoiceHeader):
    lines: int


class InvoiceLine(ApiModel):
    lead_id: uuid.UUID
    amount_cents: int
    description: str | None = None
    delivered_at: datetime | None = None


class Invoice(InvoiceHeader):
    buyer_email: str | None = None
    payment_method: str | None = None
    created_at: datetime
    updated_at: datetime
    lines: list[InvoiceLine]


class Return(ApiModel):
    id: uuid.UUID
    lead_id: uuid.UUID
    buyer_id: uuid.UUID
    reason: str
    note: str | None = None
    status: str
    decision_note: str | None = None
    requested_via: str
    requested_by: uuid.UUID | None = None
    decided_by: uuid.UUID | None = None
    decided_at: datetime | None = None
    credit_transaction_id: uuid.UUID | None = None
    created_at: datetime
    updated_at: datetime


class ReturnListItem(Return):
    buyer_name: str
    offer_name: str | None = None
    price_cents: int | None = None
    delivered_at: datetime | None = None
