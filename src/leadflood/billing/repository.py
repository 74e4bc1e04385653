"""All SQL of billing: ledger postings, balances, statements, invoices and returns."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from leadflood.core.uow import Conn

# One balanced transaction: the buyer account moves by $5 (signed), the counter account by
# the opposite; the balance projection moves in the same statement. A repeated
# idempotency key posts nothing.
_POST = """
WITH txn AS (
    INSERT INTO ledger_transactions (kind, buyer_id, lead_id, amount_cents, currency,
                                     description, idempotency_key, created_by)
    SELECT $1, b.id, $3::uuid, abs($5::bigint), b.currency, $6, $7, $8::uuid
    FROM buyers b WHERE b.id = $2::uuid
    ON CONFLICT (idempotency_key) DO NOTHING
    RETURNING id
),
entries AS (
    INSERT INTO ledger_entries (transaction_id, account, amount_cents)
    SELECT id, 'buyer:' || $2::uuid::text, $5::bigint FROM txn
    UNION ALL
    SELECT id, $4::text, -$5::bigint FROM txn
),
balance AS (
    UPDATE buyers SET balance_cents = balance_cents + $5::bigint
    WHERE id = $2::uuid AND EXISTS (SELECT 1 FROM txn)
    RETURNING balance_cents
)
SELECT (SELECT id FROM txn) AS transaction_id, (SELECT balance_cents FROM balance) AS balance
"""


@dataclass(frozen=True, slots=True)
class Posted:
    transaction_id: uuid.UUID | None  # None: the idempotency key had been used
    balance: int | None


@dataclass(frozen=True, slots=True)
class BuyerMoney:
    id: uuid.UUID
    name: str
    payment_method: str
    currency: str
    balance_cents: int
    reserved_cents: int
    min_balance_cents: int


@dataclass(frozen=True, slots=True)
class BuyerAccount(BuyerMoney):
    max_return_rate: float | None
    has_api_key: bool
    ledger_balance: int


@dataclass(frozen=True, slots=True)
class LedgerLine:
    id: uuid.UUID
    kind: str
    lead_id: uuid.UUID | None
    amount_cents: int
    currency: str
    description: str | None
    created_at: datetime
    delta_cents: int
    running_balance: int


@dataclass(frozen=True, slots=True)
class BuyerBalance(BuyerMoney):
    pending_returns: int


@dataclass(frozen=True, slots=True)
class PostpaidBuyer:
    id: uuid.UUID
    currency: str
    payment_method: str


@dataclass(frozen=True, slots=True)
class OpenInvoice:
    id: uuid.UUID
    status: str
    total_cents: int


@dataclass(frozen=True, slots=True)
class InvoiceSummary:
    id: uuid.UUID
    buyer_id: uuid.UUID
    buyer_name: str
    period_start: date
    period_end: date
    status: str
    currency: str
    total_cents: int
    issued_at: datetime | None
    due_at: datetime | None
    paid_at: datetime | None
    lines: int


@dataclass(frozen=True, slots=True)
class InvoiceLine:
    lead_id: uuid.UUID
    amount_cents: int
    description: str | None
    delivered_at: datetime | None


@dataclass(frozen=True, slots=True)
class Invoice:
    id: uuid.UUID
    buyer_id: uuid.UUID
    period_start: date
    period_end: date
    status: str
    currency: str
    total_cents: int
    issued_at: datetime | None
    due_at: datetime | None
    paid_at: datetime | None
    payment_method: str | None
    created_at: datetime
    updated_at: datetime
    buyer_name: str
    buyer_email: str | None
    lines: list[InvoiceLine]


@dataclass(frozen=True, slots=True)
class LeadForReturn:
    id: uuid.UUID
    status: str
    buyer_id: uuid.UUID | None
    delivered_at: datetime | None
    price_cents: int | None
    billing_status: str
    return_window_days: int
    payment_method: str | None
    max_return_rate: Any


@dataclass(frozen=True, slots=True)
class LeadReturn:
    id: uuid.UUID
    lead_id: uuid.UUID
    buyer_id: uuid.UUID
    reason: str
    note: str | None
    status: str
    decision_note: str | None
    requested_via: str
    requested_by: uuid.UUID | None
    decided_by: uuid.UUID | None
    decided_at: datetime | None
    credit_transaction_id: uuid.UUID | None
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class ReturnListItem(LeadReturn):
    buyer_name: str
    price_cents: int | None
    delivered_at: datetime | None
    offer_name: str | None


async def post(
    conn: Conn,
    *,
    kind: str,
    buyer_id: uuid.UUID,
    delta_cents: int,
    counter_account: str,
    description: str,
    lead_id: uuid.UUID | None = None,
    idempotency_key: str | None = None,
    created_by: uuid.UUID | None = None,
) -> Posted:
    row = await conn.fetchrow(
        _POST,
        kind,
        buyer_id,
        lead_id,
        counter_account,
        delta_cents,
        description,
        idempotency_key,
        created_by,
    )
    return Posted(**row)


async def buyer(conn: Conn, buyer_id: uuid.UUID) -> BuyerAccount | None:
    row = await conn.fetchrow(
        "SELECT id, name, payment_method::text AS payment_method, currency, balance_cents, "
        "       reserved_cents, min_balance_cents, max_return_rate::float8 AS max_return_rate, "
        "       (api_key_hash IS NOT NULL) AS has_api_key, "
        "       coalesce((SELECT sum(amount_cents) FROM ledger_entries "
        "                 WHERE account = 'buyer:' || buyers.id::text), 0)::bigint "
        "         AS ledger_balance "
        "FROM buyers WHERE id = $1",
        buyer_id,
    )
    return BuyerAccount(**row) if row else None


async def buyer_by_key_hash(conn: Conn, key_hash: str) -> uuid.UUID | None:
    return await conn.fetchval("SELECT id FROM buyers WHERE api_key_hash = $1", key_hash)


async def set_buyer_key(conn: Conn, buyer_id: uuid.UUID, key_hash: str) -> bool:
    result = await conn.execute(
        "UPDATE buyers SET api_key_hash = $2 WHERE id = $1", buyer_id, key_hash
    )
    return result == "UPDATE 1"


async def statement(conn: Conn, buyer_id: uuid.UUID, limit: int) -> list[LedgerLine]:
    rows = await conn.fetch(
        "SELECT t.id, t.kind, t.lead_id, t.amount_cents, t.currency, t.description, "
        "       t.created_at, e.amount_cents AS delta_cents, "
        "       (sum(e.amount_cents) OVER (ORDER BY t.created_at, t.id))::bigint "
        "         AS running_balance "
        "FROM ledger_transactions t JOIN ledger_entries e ON e.transaction_id = t.id "
        "  AND e.account = 'buyer:' || $1::uuid::text "
        "WHERE t.buyer_id = $1::uuid ORDER BY t.created_at DESC, t.id DESC LIMIT $2",
        buyer_id,
        limit,
    )
    return [LedgerLine(**r) for r in rows]


async def buyers_overview(conn: Conn) -> list[BuyerBalance]:
    rows = await conn.fetch(
        "SELECT b.id, b.name, b.payment_method::text AS payment_method, b.currency, "
        "       b.balance_cents, b.reserved_cents, b.min_balance_cents, "
        "       (SELECT count(*) FROM lead_returns r WHERE r.buyer_id = b.id "
        "        AND r.status = 'pending') AS pending_returns "
        "FROM buyers b ORDER BY b.name"
    )
    return [BuyerBalance(**r) for r in rows]


# ---- invoices -----------------------------------------------------------------------------


async def postpaid_buyers(conn: Conn) -> list[PostpaidBuyer]:
    rows = await conn.fetch(
        "SELECT id, currency, payment_method::text AS payment_method FROM buyers "
        "WHERE payment_method <> 'prepaid' ORDER BY name, id"
    )
    return [PostpaidBuyer(**r) for r in rows]


async def open_invoice(
    conn: Conn, buyer: PostpaidBuyer, start: datetime, end: datetime
) -> OpenInvoice:
    """The buyer's live invoice for the period, created as a draft if missing; locked."""
    await conn.execute(
        "INSERT INTO invoices (buyer_id, period_start, period_end, status, currency, "
        "                      total_cents, payment_method) "
        "VALUES ($1, $2, $3, 'draft', $4, 0, $5::payment_method) "
        "ON CONFLICT (buyer_id, period_start) WHERE status <> 'void' DO NOTHING",
        buyer.id,
        start,
        end,
        buyer.currency,
        buyer.payment_method,
    )
    row = await conn.fetchrow(
        "SELECT id, status::text AS status, total_cents FROM invoices "
        "WHERE buyer_id = $1 AND period_start = $2 AND status <> 'void' FOR UPDATE",
        buyer.id,
        start,
    )
    return OpenInvoice(**row)


async def add_lines(
    conn: Conn,
    invoice_id: uuid.UUID,
    buyer_id: uuid.UUID,
    start: datetime,
    end: datetime,
) -> int:
    """One line per delivered, billable lead of the period not on any invoice yet."""
    added = await conn.fetch(
        "INSERT INTO invoice_line_items (invoice_id, lead_id, amount_cents, description) "
        "SELECT $1, l.id, coalesce(l.price_cents, 0), o.name || ' lead ' || l.id::text "
        "FROM leads l JOIN offers o ON o.id = l.offer_id "
        "WHERE l.buyer_id = $2 AND l.billing_status = 'billable' "
        "  AND l.delivered_at >= $3 AND l.delivered_at < $4 "
        "ORDER BY l.delivered_at, l.id "
        "ON CONFLICT (lead_id) DO NOTHING RETURNING lead_id",
        invoice_id,
        buyer_id,
        start,
        end,
    )
    ids = [r["lead_id"] for r in added]
    if ids:
        await conn.execute(
            "UPDATE leads SET billing_status = 'invoiced' WHERE id = ANY($1::uuid[]) "
            "AND billing_status = 'billable'",
            ids,
        )
    await conn.execute(
        "UPDATE invoices SET total_cents = coalesce((SELECT sum(amount_cents) "
        "  FROM invoice_line_items WHERE invoice_id = $1), 0) WHERE id = $1",
        invoice_id,
    )
    return len(ids)


async def drop_empty_draft(conn: Conn, invoice_id: uuid.UUID) -> None:
    await conn.execute(
        "DELETE FROM invoices WHERE id = $1 AND status = 'draft' "
        "AND NOT EXISTS (SELECT 1 FROM invoice_line_items WHERE invoice_id = $1)",
        invoice_id,
    )


async def invoices(conn: Conn, buyer_id: uuid.UUID | None = None) -> list[InvoiceSummary]:
    rows = await conn.fetch(
        "SELECT i.id, i.buyer_id, b.name AS buyer_name, i.period_start, i.period_end, "
        "       i.status::text AS status, i.currency, i.total_cents, i.issued_at, i.due_at, "
        "       i.paid_at, (SELECT count(*) FROM invoice_line_items li "
        "                   WHERE li.invoice_id = i.id) AS lines "
        "FROM invoices i JOIN buyers b ON b.id = i.buyer_id "
        "WHERE ($1::uuid IS NULL OR i.buyer_id = $1) "
        "ORDER BY i.period_start DESC, b.name",
        buyer_id,
    )
    return [InvoiceSummary(**r) for r in rows]


async def invoice(conn: Conn, invoice_id: uuid.UUID) -> Invoice | None:
    row = await conn.fetchrow(
        "SELECT i.id, i.buyer_id, i.period_start, i.period_end, i.status::text AS status, "
        "       i.currency, i.total_cents, i.issued_at, i.due_at, i.paid_at, "
        "       i.payment_method::text AS payment_method, i.created_at, i.updated_at, "
        "       b.name AS buyer_name, b.email AS buyer_email "
        "FROM invoices i JOIN buyers b ON b.id = i.buyer_id WHERE i.id = $1",
        invoice_id,
    )
    if row is None:
        return None
    lines = await conn.fetch(
        "SELECT li.lead_id, li.amount_cents, li.description, l.delivered_at "
        "FROM invoice_line_items li JOIN leads l ON l.id = li.lead_id "
        "WHERE li.invoice_id = $1 ORDER BY l.delivered_at, li.lead_id",
        invoice_id,
    )
    return Invoice(**row, lines=[InvoiceLine(**r) for r in lines])


# status -> (statuses it may follow, columns it stamps)
_TRANSITIONS = {
    "issued": (["draft"], "issued_at = now(), due_at = now() + interval '30 days'"),
    "paid": (["issued"], "paid_at = now()"),
    "void": (["draft", "issued"], "updated_at = now()"),
}


async def set_invoice_status(conn: Conn, invoice_id: uuid.UUID, status: str) -> bool:
    allowed, stamps = _TRANSITIONS[status]  # status comes from this table's keys only
    result = await conn.execute(
        f"UPDATE invoices SET status = $3::invoice_status, {stamps} "
        "WHERE id = $1 AND status = ANY($2::invoice_status[])",
        invoice_id,
        allowed,
        status,
    )
    return result == "UPDATE 1"


async def release_lines(conn: Conn, invoice_id: uuid.UUID) -> int:
    """A voided invoice gives its leads back to be invoiced again."""
    leads = await conn.fetch(
        "DELETE FROM invoice_line_items WHERE invoice_id = $1 RETURNING lead_id", invoice_id
    )
    ids = [r["lead_id"] for r in leads]
    await conn.execute(
        "UPDATE leads SET billing_status = 'billable' WHERE id = ANY($1::uuid[]) "
        "AND billing_status = 'invoiced'",
        ids,
    )
    return len(ids)


# ---- returns ------------------------------------------------------------------------------


async def lead_for_return(conn: Conn, lead_id: uuid.UUID) -> LeadForReturn | None:
    row = await conn.fetchrow(
        "SELECT l.id, l.status::text AS status, l.buyer_id, l.delivered_at, l.price_cents, "
        "       l.billing_status::text AS billing_status, o.return_window_days, "
        "       b.payment_method::text AS payment_method, b.max_return_rate "
        "FROM leads l JOIN offers o ON o.id = l.offer_id LEFT JOIN buyers b ON b.id = l.buyer_id "
        "WHERE l.id = $1 FOR UPDATE OF l",
        lead_id,
    )
    return LeadForReturn(**row) if row else None


async def return_rate(conn: Conn, buyer_id: uuid.UUID) -> tuple[int, int]:
    """(returns pending or accepted, leads delivered) over the last 30 days."""
    row = await conn.fetchrow(
        "SELECT (SELECT count(*) FROM lead_returns WHERE buyer_id = $1 "
        "        AND status IN ('pending', 'accepted') "
        "        AND created_at > now() - interval '30 days') AS returns, "
        "       (SELECT count(*) FROM leads WHERE buyer_id = $1 "
        "        AND delivered_at > now() - interval '30 days') AS delivered",
        buyer_id,
    )
    return row["returns"], row["delivered"]


async def insert_return(conn: Conn, values: dict[str, Any]) -> LeadReturn | None:
    columns = list(values)
    row = await conn.fetchrow(
        f"INSERT INTO lead_returns ({', '.join(columns)}) "
        f"VALUES ({', '.join(f'${i}' for i in range(1, len(columns) + 1))}) "
        "ON CONFLICT (lead_id) DO NOTHING RETURNING *",
        *values.values(),
    )
    return LeadReturn(**row) if row else None


async def lock_return(conn: Conn, return_id: uuid.UUID) -> LeadReturn | None:
    row = await conn.fetchrow("SELECT * FROM lead_returns WHERE id = $1 FOR UPDATE", return_id)
    return LeadReturn(**row) if row else None


async def decide_return(
    conn: Conn,
    return_id: uuid.UUID,
    status: str,
    note: str | None,
    decided_by: uuid.UUID | None,
    credit_transaction_id: uuid.UUID | None,
) -> None:
    await conn.execute(
        "UPDATE lead_returns SET status = $2, decision_note = $3, decided_by = $4, "
        "decided_at = now(), credit_transaction_id = $5 WHERE id = $1",
        return_id,
        status,
        note,
        decided_by,
        credit_transaction_id,
    )


async def mark_returned(conn: Conn, lead_id: uuid.UUID) -> bool:
    result = await conn.execute(
        "UPDATE leads SET status = 'returned', billing_status = 'credited' "
        "WHERE id = $1 AND status = 'delivered'",
        lead_id,
    )
    return result == "UPDATE 1"


async def returns(conn: Conn, status: str | None, limit: int = 200) -> list[ReturnListItem]:
    rows = await conn.fetch(
        "SELECT r.*, b.name AS buyer_name, l.price_cents, l.delivered_at, o.name AS offer_name "
        "FROM lead_returns r JOIN buyers b ON b.id = r.buyer_id JOIN leads l ON l.id = r.lead_id "
        "JOIN offers o ON o.id = l.offer_id "
        "WHERE ($1::text IS NULL OR r.status = $1) ORDER BY r.created_at DESC LIMIT $2",
        status,
        limit,
    )
    return [ReturnListItem(**r) for r in rows]


# An accepted return takes the lead's payout back from its source (a balanced transaction
# opposite to the payout), once.
_REVERSE_PAYOUT = """
WITH original AS (
    SELECT buyer_id, source_id, amount_cents, currency FROM ledger_transactions
    WHERE kind = 'source_payout' AND lead_id = $1
),
txn AS (
    INSERT INTO ledger_transactions (kind, buyer_id, source_id, lead_id, amount_cents,
                                     currency, description, idempotency_key, created_by)
    SELECT 'payout_reversal', buyer_id, source_id, $1, amount_cents, currency,
           'payout reversed: the lead was returned', 'payout-reversal:lead:' || $1::text, $2
    FROM original
    ON CONFLICT (idempotency_key) DO NOTHING
    RETURNING id, source_id, amount_cents
),
entries AS (
    INSERT INTO ledger_entries (transaction_id, account, amount_cents)
    SELECT id, 'platform:payouts', -amount_cents FROM txn
    UNION ALL
    SELECT id, 'source:' || source_id::text, amount_cents FROM txn
)
SELECT amount_cents FROM txn
"""


async def reverse_payout(
    conn: Conn, lead_id: uuid.UUID, created_by: uuid.UUID | None
) -> int | None:
    """The payout taken back (cents), or None when the lead earned none."""
    return await conn.fetchval(_REVERSE_PAYOUT, lead_id, created_by)


# The profit report's groupings: the key each row is grouped by, and its label.
_PROFIT_KEYS = {
    "day": ("to_char(l.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD')", None),
    "source": ("l.source_id::text", "(SELECT name FROM sources WHERE id = l.source_id)"),
    "buyer": ("coalesce(d.buyer_id::text, '')", "(SELECT name FROM buyers WHERE id = d.buyer_id)"),
    "offer": ("l.offer_id::text", "(SELECT name FROM offers WHERE id = l.offer_id)"),
}


@dataclass(frozen=True, slots=True, kw_only=True)
class ProfitRow:
    key: str
    label: str
    leads: int
    sold: int
    gross_cents: int
    returned: int
    returned_cents: int
    payouts_cents: int


async def profit(conn: Conn, group_by: str, since: datetime, until: datetime) -> list[ProfitRow]:
    """Leads received in [since, until) by `group_by`: sold, sale revenue, accepted returns
    and their value, net payouts to sources (payouts less reversals)."""
    key, label = _PROFIT_KEYS[group_by]
    rows = await conn.fetch(
        f"SELECT {key} AS key, max({label or key}) AS label, "
        # A shared lead's further sales are leads of their own: counted as sales only.
        "       count(*) FILTER (WHERE l.sold_from_lead_id IS NULL) AS leads, "
        "       count(*) FILTER (WHERE d.status = 'succeeded') AS sold, "
        "       coalesce(sum(l.price_cents) FILTER (WHERE d.status = 'succeeded'), 0)::bigint "
        "           AS gross_cents, "
        "       count(r.id) FILTER (WHERE r.status = 'accepted') AS returned, "
        "       coalesce(sum(l.price_cents) FILTER (WHERE r.status = 'accepted'), 0)::bigint "
        "           AS returned_cents, "
        "       coalesce(sum(p.net), 0)::bigint AS payouts_cents "
        "FROM leads l "
        "LEFT JOIN deliveries d ON d.lead_id = l.id "
        "LEFT JOIN lead_returns r ON r.lead_id = l.id "
        "LEFT JOIN LATERAL ("
        "    SELECT sum(CASE t.kind WHEN 'source_payout' THEN t.amount_cents "
        "                           ELSE -t.amount_cents END) AS net "
        "    FROM ledger_transactions t "
        "    WHERE t.lead_id = l.id AND t.kind IN ('source_payout', 'payout_reversal')) p ON true "
        "WHERE l.created_at >= $1 AND l.created_at < $2 "
        f"GROUP BY {key} ORDER BY {key}",
        since,
        until,
    )
    return [ProfitRow(**{**r, "label": r["label"] or "—"}) for r in rows]
