"""Response bodies of the billing API."""

from __future__ import annotations

import uuid
from typing import get_type_hints

from pydantic import create_model

from leadflood.billing.repository import BuyerAccount, InvoiceSummary, LeadReturn
from leadflood.billing.repository import BuyerBalance as BuyerBalance
from leadflood.billing.repository import Invoice as Invoice
from leadflood.billing.repository import LedgerLine as LedgerLine
from leadflood.billing.repository import ReturnListItem as ReturnListItem

# Typed rows that are their own responses (their fields are the allow-list).
from leadflood.billing.service import ProfitLine as ProfitLine
from leadflood.core.api import ApiModel

InvoiceListItem = InvoiceSummary
Return = LeadReturn

# A buyer's account as stored, with what the API adds: the available funds and the ledger.
Account = create_model(  # type: ignore[call-overload]  # fields read from a dataclass
    "Account",
    __base__=ApiModel,
    **{name: (kind, ...) for name, kind in get_type_hints(BuyerAccount).items()},
    available_cents=(int, ...),
    ledger=(list[LedgerLine], ...),
)


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
