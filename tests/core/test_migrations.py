"""Fresh migration creates 100 % of DISTRIBUTION.md §2; a re-run changes nothing."""

from __future__ import annotations

import asyncio

import asyncpg
import pytest

from leadflood.core import migrate
from tests.pg import recreate_database

SPEC_ENUMS = {
    "lead_status": [
        "received",
        "validated",
        "rejected",
        "routed",
        "delivered",
        "delivery_failed",
        "returned",
        # Issue 14: a lead no buyer took within its offer's shelf life.
        "unsold",
    ],
    "billing_status": ["unbilled", "billable", "invoiced", "credited", "non_billable"],
    "invoice_status": ["draft", "issued", "paid", "void"],
    "payment_method": ["prepaid", "card", "ach", "wire", "check"],
    "routing_strategy": ["priority", "rotation", "weighted"],
    "exclusive_fallback": ["fail_closed", "fallback_allowed"],
    "delivery_channel": ["webhook", "email"],
    "delivery_status": ["pending", "in_progress", "succeeded", "failed"],
    "attempt_outcome": ["success", "retryable_error", "permanent_error", "rejected"],
}

SPEC_COLUMNS = {
    "markets": ["slug", "name", "country", "timezone", "active"],
    "verticals": ["slug", "name", "active"],
    "validation_policies": ["name", "rules"],
    "routing_policies": ["name", "strategy", "exclusive_fallback", "config"],
    "offers": [
        "slug",
        "name",
        "market_id",
        "vertical_id",
        "validation_policy_id",
        "routing_policy_id",
        "active",
    ],
    "sources": [
        "name",
        "offer_id",
        "source_key",
        "hostname",
        "path_prefix",
        "api_key_hash",
        "active",
    ],
    "buyers": [
        "name",
        "status",
        "timezone",
        "delivery_channel",
        "webhook_url",
        "webhook_secret",
        "email",
        "schedule",
        "daily_cap",
        "hourly_cap",
        "payment_method",
        "balance_cents",
        "min_balance_cents",
        "delivery_timeout_ms",
    ],
    "buyer_offers": [
        "buyer_id",
        "offer_id",
        "active",
        "priority",
        "weight",
        "price_cents",
        "daily_cap",
        "hourly_cap",
        "last_routed_at",
    ],
    "buyer_service_areas": ["buyer_id", "market_id", "postal_code", "city"],
    "offer_exclusivities": [
        "offer_id",
        "buyer_id",
        "scope_type",
        "scope_value",
        "starts_at",
        "ends_at",
        "active",
    ],
    "leads": [
        "source_id",
        "offer_id",
        "market_id",
        "vertical_id",
        "idempotency_key",
        "idempotency_key_derived",
        "status",
        "buyer_id",
        "first_name",
        "last_name",
        "email",
        "normalized_email",
        "phone",
        "normalized_phone",
        "address",
        "city",
        "state",
        "postal_code",
        "consent",
        "consent_text",
        "consent_certificate_url",
        "ip",
        "user_agent",
        "raw_payload",
        "rejection_reasons",
        "duplicate_of_lead_id",
        "price_cents",
        "billing_status",
        "validated_at",
        "routed_at",
        "delivered_at",
    ],
    "routing_decisions": [
        "lead_id",
        "outcome",
        "buyer_id",
        "strategy",
        "candidates",
        "decided_at",
        "duration_ms",
    ],
    "deliveries": [
        "lead_id",
        "buyer_id",
        "channel",
        "status",
        "attempt_count",
        "next_attempt_at",
        "idempotency_key",
        "last_error",
        "delivered_at",
    ],
    "delivery_attempts": [
        "delivery_id",
        "attempt_no",
        "started_at",
        "finished_at",
        "duration_ms",
        "request_digest",
        "http_status",
        "response_excerpt",
        "outcome",
        "error",
    ],
    "invoices": [
        "buyer_id",
        "period_start",
        "period_end",
        "status",
        "currency",
        "total_cents",
        "issued_at",
        "due_at",
        "paid_at",
        "payment_method",
    ],
    "invoice_line_items": ["invoice_id", "lead_id", "amount_cents", "description"],
}
IMMUTABLE = {"routing_decisions", "delivery_attempts", "invoice_line_items"}

SPEC_COLUMN_TYPES = {
    ("routing_policies", "strategy"): "routing_strategy",
    ("routing_policies", "exclusive_fallback"): "exclusive_fallback",
    ("buyers", "delivery_channel"): "delivery_channel",
    ("buyers", "payment_method"): "payment_method",
    ("leads", "status"): "lead_status",
    ("leads", "billing_status"): "billing_status",
    ("deliveries", "status"): "delivery_status",
    ("delivery_attempts", "outcome"): "attempt_outcome",
    ("invoices", "status"): "invoice_status",
    ("leads", "raw_payload"): "jsonb",
    ("leads", "rejection_reasons"): "_text",
    ("validation_policies", "rules"): "jsonb",
    ("routing_policies", "config"): "jsonb",
    ("routing_decisions", "candidates"): "jsonb",
    ("buyers", "schedule"): "jsonb",
}

# (table, columns) that must be unique, exactly as the spec states.
SPEC_UNIQUES = [
    ("markets", ["slug"]),
    ("verticals", ["slug"]),
    ("offers", ["slug"]),
    ("sources", ["source_key"]),
    ("buyer_offers", ["buyer_id", "offer_id"]),
    ("leads", ["source_id", "idempotency_key"]),
    ("deliveries", ["lead_id"]),
    ("delivery_attempts", ["delivery_id", "attempt_no"]),
    ("invoice_line_items", ["lead_id"]),
]
SPEC_FOREIGN_KEYS = [
    ("offers", "market_id", "markets"),
    ("offers", "vertical_id", "verticals"),
    ("offers", "validation_policy_id", "validation_policies"),
    ("offers", "routing_policy_id", "routing_policies"),
    ("sources", "offer_id", "offers"),
    ("buyer_offers", "buyer_id", "buyers"),
    ("buyer_offers", "offer_id", "offers"),
    ("buyer_service_areas", "buyer_id", "buyers"),
    ("buyer_service_areas", "market_id", "markets"),
    ("offer_exclusivities", "offer_id", "offers"),
    ("offer_exclusivities", "buyer_id", "buyers"),
    ("leads", "source_id", "sources"),
    ("leads", "offer_id", "offers"),
    ("leads", "market_id", "markets"),
    ("leads", "vertical_id", "verticals"),
    ("leads", "buyer_id", "buyers"),
    ("leads", "duplicate_of_lead_id", "leads"),
    ("routing_decisions", "lead_id", "leads"),
    ("deliveries", "lead_id", "leads"),
    ("deliveries", "buyer_id", "buyers"),
    ("delivery_attempts", "delivery_id", "deliveries"),
    ("invoices", "buyer_id", "buyers"),
    ("invoice_line_items", "invoice_id", "invoices"),
    ("invoice_line_items", "lead_id", "leads"),
]
# Hot-path indexes the spec requires: (table, leading columns, partial predicate fragment).
SPEC_INDEXES = [
    ("leads", ["normalized_email", "offer_id", "created_at"], None),
    ("leads", ["normalized_phone", "offer_id", "created_at"], None),
    ("leads", ["status"], None),
    ("buyer_offers", ["offer_id"], "active"),
    ("buyer_service_areas", ["market_id", "postal_code"], None),
    ("deliveries", ["status", "next_attempt_at"], None),
]
SPEC_CHECKS = [("buyer_offers", "weight > 0"), ("buyer_offers", "price_cents >= 0")]

CATALOG_SNAPSHOT = """
SELECT
  (SELECT array_agg(c.relname || ':' || c.relkind::text ORDER BY c.relname)
     FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE n.nspname = 'public') AS relations,
  (SELECT array_agg(conname ORDER BY conname) FROM pg_constraint c
     JOIN pg_namespace n ON n.oid = c.connamespace WHERE n.nspname = 'public') AS constraints,
  (SELECT array_agg(typname ORDER BY typname) FROM pg_type t
     JOIN pg_namespace n ON n.oid = t.typnamespace
    WHERE n.nspname = 'public' AND t.typtype = 'e') AS enums,
  (SELECT version_num FROM alembic_version) AS version
"""


async def _introspect(url: str) -> dict:
    conn = await asyncpg.connect(url)
    try:
        enums: dict[str, list[str]] = {}
        for row in await conn.fetch(
            "SELECT t.typname, array_agg(e.enumlabel ORDER BY e.enumsortorder) AS labels "
            "FROM pg_type t JOIN pg_enum e ON e.enumtypid = t.oid GROUP BY t.typname"
        ):
            enums[row["typname"]] = list(row["labels"])
        columns: dict[str, dict[str, str]] = {}
        for row in await conn.fetch(
            "SELECT table_name, column_name, udt_name FROM information_schema.columns "
            "WHERE table_schema = 'public'"
        ):
            columns.setdefault(row["table_name"], {})[row["column_name"]] = row["udt_name"]
        uniques = {
            (r["table"], tuple(r["cols"]))
            for r in await conn.fetch(
                "SELECT c.conrelid::regclass::text AS table, "
                "array_agg(a.attname ORDER BY k.ord) AS cols FROM pg_constraint c "
                "CROSS JOIN LATERAL unnest(c.conkey) WITH ORDINALITY k(attnum, ord) "
                "JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = k.attnum "
                "WHERE c.contype = 'u' GROUP BY c.oid, c.conrelid"
            )
        }
        fks = {
            (r["table"], r["col"], r["ref"])
            for r in await conn.fetch(
                "SELECT c.conrelid::regclass::text AS table, a.attname AS col, "
                "c.confrelid::regclass::text AS ref FROM pg_constraint c "
                "JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = c.conkey[1] "
                "WHERE c.contype = 'f'"
            )
        }
        indexes = [
            (r["table"], list(r["cols"]), r["pred"])
            for r in await conn.fetch(
                "SELECT i.indrelid::regclass::text AS table, "
                "array_agg(a.attname ORDER BY k.ord) AS cols, "
                "pg_get_expr(i.indpred, i.indrelid) AS pred FROM pg_index i "
                "CROSS JOIN LATERAL unnest(i.indkey) WITH ORDINALITY k(attnum, ord) "
                "JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum "
                "GROUP BY i.indexrelid, i.indrelid, i.indpred"
            )
        ]
        checks = [
            (r["table"], r["def"])
            for r in await conn.fetch(
                "SELECT conrelid::regclass::text AS table, pg_get_constraintdef(oid) AS def "
                "FROM pg_constraint WHERE contype = 'c'"
            )
        ]
        snapshot = dict(await conn.fetchrow(CATALOG_SNAPSHOT))
        return {
            "enums": enums,
            "columns": columns,
            "uniques": uniques,
            "fks": fks,
            "indexes": indexes,
            "checks": checks,
            "snapshot": snapshot,
        }
    finally:
        await conn.close()


@pytest.fixture(scope="module")
def fresh_schema(pg_admin_url: str) -> tuple[dict, dict]:
    url = recreate_database(pg_admin_url, "leadflood_migration_test")
    migrate.upgrade(url)
    first = asyncio.run(_introspect(url))
    migrate.upgrade(url)  # second run must be a no-op
    second = asyncio.run(_introspect(url))
    return first, second


def test_every_spec_enum_exists_with_its_values(fresh_schema) -> None:
    schema, _ = fresh_schema
    for name, values in SPEC_ENUMS.items():
        assert schema["enums"].get(name) == values, name


def test_every_spec_table_has_its_columns_and_timestamps(fresh_schema) -> None:
    schema, _ = fresh_schema
    for table, columns in SPEC_COLUMNS.items():
        present = schema["columns"].get(table)
        assert present is not None, f"missing table {table}"
        missing = [c for c in [*columns, "id", "created_at"] if c not in present]
        assert not missing, f"{table} lacks {missing}"
        assert present["id"] == "uuid"
        assert present["created_at"] == "timestamptz"
        if table not in IMMUTABLE:
            assert present.get("updated_at") == "timestamptz", table
    for (table, column), udt in SPEC_COLUMN_TYPES.items():
        assert schema["columns"][table][column] == udt, (table, column)


def test_every_spec_constraint_and_index_exists(fresh_schema) -> None:
    schema, _ = fresh_schema
    for table, cols in SPEC_UNIQUES:
        assert (table, tuple(cols)) in schema["uniques"], (table, cols)
    for fk in SPEC_FOREIGN_KEYS:
        assert fk in schema["fks"], fk
    for table, cols, pred in SPEC_INDEXES:
        assert any(
            t == table and c[: len(cols)] == cols and (pred is None or (p and pred in p))
            for t, c, p in schema["indexes"]
        ), (table, cols, pred)
    for table, fragment in SPEC_CHECKS:
        assert any(t == table and fragment in d for t, d in schema["checks"]), (table, fragment)


def test_job_queue_tables_are_in_the_same_tree(fresh_schema) -> None:
    schema, _ = fresh_schema
    assert "pgqueuer" in schema["columns"]
    assert "pgqueuer_log" in schema["columns"]


def test_second_migration_run_is_a_no_op(fresh_schema) -> None:
    first, second = fresh_schema
    assert first["snapshot"] == second["snapshot"]
    assert first["snapshot"]["version"] is not None
