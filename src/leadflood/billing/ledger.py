"""Billing's SQL fragments that other domains' single statements compose (as they compose
the job insert, core/queue.fused_enqueue_ctes): the ledger rules stay here, the hot paths
keep one statement each (decisions 0003, 0010).

A prepaid buyer's price is reserved at routing, charged when delivered (a balanced ledger
transaction: buyer account -P, platform revenue +P), released when delivery fails, and
reserved again when an operator re-delivers.
"""

from __future__ import annotations


def funds_available(price: str, buyers: str = "") -> str:
    """The condition that a prepaid buyer can cover `price` above its minimum balance."""
    b = f"{buyers}." if buyers else ""
    return f"{b}balance_cents - {b}reserved_cents - {price} >= {b}min_balance_cents"


def reserve(price: str) -> str:
    """The SET expression reserving `price` (prepaid buyers only)."""
    prepaid_price = f"CASE WHEN payment_method = 'prepaid' THEN {price} ELSE 0 END"
    return f"reserved_cents = reserved_cents + {prepaid_price}"


def charge_ctes(delivered_cte: str) -> str:
    """CTEs charging each prepaid buyer of `delivered_cte` (rows: id = lead id, buyer_id,
    price, reserved — what routing reserved, which a lower confirmed price leaves above the
    charge): balance down, reservation released, one balanced ledger transaction each,
    idempotent per lead."""
    return f"""
ledger_charged AS (
    UPDATE buyers b SET balance_cents = b.balance_cents - d.price,
                        reserved_cents = greatest(b.reserved_cents - d.reserved, 0)
    FROM {delivered_cte} d
    WHERE b.id = d.buyer_id AND b.payment_method = 'prepaid' AND d.price > 0
    RETURNING b.id AS buyer_id, d.id AS lead_id, d.price, b.currency
),
ledger_txn AS (
    INSERT INTO ledger_transactions (kind, buyer_id, lead_id, amount_cents, currency,
                                     description, idempotency_key)
    SELECT 'delivery_debit', buyer_id, lead_id, price, currency, 'lead delivered',
           'debit:lead:' || lead_id::text
    FROM ledger_charged
    RETURNING id, buyer_id, amount_cents
),
ledger_entries_posted AS (
    INSERT INTO ledger_entries (transaction_id, account, amount_cents)
    SELECT id, 'buyer:' || buyer_id::text, -amount_cents FROM ledger_txn
    UNION ALL
    SELECT id, 'platform:revenue', amount_cents FROM ledger_txn
)"""


def release_cte(failed_cte: str) -> str:
    """A CTE releasing the reservation of each prepaid buyer of `failed_cte` (rows:
    buyer_id, price)."""
    return f"""
ledger_released AS (
    UPDATE buyers b SET reserved_cents = greatest(b.reserved_cents - f.price, 0)
    FROM {failed_cte} f WHERE b.id = f.buyer_id AND b.payment_method = 'prepaid'
)"""


def payout_ctes(delivered_cte: str) -> str:
    """CTEs posting the payout each sold lead of `delivered_cte` (rows: id = lead id,
    buyer_id, price) earns its source, by the source's rule: a balanced transaction
    (platform:payouts +P, source:<id> -P: a payable), idempotent per lead.

    A lead sold by auction earns the rule applied to what it sold for, never more than
    the source was offered at the ping (decision 0022): sold below the winning bid (the
    winner refused it and a lower bid bought it, or the buyer confirmed a lower price),
    the payout follows the sale down."""
    return f"""
payout_rule AS (
    SELECT d.id AS lead_id, d.buyer_id, s.id AS source_id, b.currency, a.payout_cents AS offered,
           -- A fixed payout is per lead received: a shared lead's further sales earn none.
           'payout:lead:' || CASE WHEN s.payout_type = 'fixed'
                                  THEN coalesce(l.sold_from_lead_id, l.id)
                                  ELSE l.id END::text AS payout_key,
           CASE s.payout_type
               WHEN 'fixed' THEN coalesce(s.payout_cents, 0)::bigint
               WHEN 'revenue_share' THEN round(d.price * coalesce(s.payout_share, 0))::bigint
               WHEN 'bid_margin' THEN greatest(d.price - coalesce(s.payout_cents, 0), 0)::bigint
               ELSE 0 END AS amount
    FROM {delivered_cte} d
    JOIN leads l ON l.id = d.id JOIN sources s ON s.id = l.source_id
    JOIN buyers b ON b.id = d.buyer_id
    LEFT JOIN auctions a ON a.id = l.auction_id
    WHERE s.payout_type <> 'none'
),
payout AS (
    SELECT lead_id, buyer_id, source_id, currency, payout_key,
           CASE WHEN offered IS NULL THEN amount ELSE least(amount, offered) END AS amount
    FROM payout_rule
),
payout_txn AS (
    INSERT INTO ledger_transactions (kind, buyer_id, source_id, lead_id, amount_cents,
                                     currency, description, idempotency_key)
    SELECT 'source_payout', buyer_id, source_id, lead_id, amount, currency,
           'payout for a sold lead', payout_key
    FROM payout WHERE amount > 0
    ON CONFLICT (idempotency_key) DO NOTHING
    RETURNING id, source_id, amount_cents
),
payout_entries AS (
    INSERT INTO ledger_entries (transaction_id, account, amount_cents)
    SELECT id, 'platform:payouts', amount_cents FROM payout_txn
    UNION ALL
    SELECT id, 'source:' || source_id::text, -amount_cents FROM payout_txn
)"""
