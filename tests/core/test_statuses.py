"""Each status StrEnum is exactly its database type or CHECK constraint."""

from __future__ import annotations

import re

import pytest

from leadflood.core import status
from leadflood.core.uow import single_statements

ENUM_TYPES = {
    "lead_status": status.LeadStatus,
    "delivery_status": status.DeliveryStatus,
    "attempt_outcome": status.AttemptOutcome,
    "billing_status": status.BillingStatus,
    "invoice_status": status.InvoiceStatus,
}
CHECKED_COLUMNS = {
    ("public.lead_returns", "status"): status.ReturnStatus,
    ("public.buyers", "status"): status.BuyerStatus,
    ("outreach.job_executions", "status"): status.ExecutionStatus,
    ("outreach.search_runs", "status"): status.ExecutionStatus,
    ("outreach.enrichment_runs", "status"): status.ExecutionStatus,
    ("outreach.messages", "status"): status.MessageStatus,
    ("outreach.enrollments", "status"): status.EnrollmentStatus,
    ("outreach.sequences", "status"): status.SequenceStatus,
    ("outreach.leads", "status"): status.ProspectStatus,
}


@pytest.mark.parametrize("type_name", sorted(ENUM_TYPES))
async def test_enum_types_match(runtime, type_name: str) -> None:
    async with single_statements(runtime.db) as tx:
        labels = await tx.fetchval(
            "SELECT array_agg(e.enumlabel ORDER BY e.enumsortorder) FROM pg_enum e "
            "JOIN pg_type t ON t.oid = e.enumtypid WHERE t.typname = $1",
            type_name,
        )
    assert labels == [member.value for member in ENUM_TYPES[type_name]]


@pytest.mark.parametrize(("table", "column"), sorted(CHECKED_COLUMNS))
async def test_checked_columns_match(runtime, table: str, column: str) -> None:
    schema, name = table.split(".")
    async with single_statements(runtime.db) as tx:
        definition = await tx.fetchval(
            "SELECT pg_get_constraintdef(c.oid) FROM pg_constraint c "
            "JOIN pg_class r ON r.oid = c.conrelid JOIN pg_namespace n ON n.oid = r.relnamespace "
            "WHERE c.contype = 'c' AND n.nspname = $1 AND r.relname = $2 "
            "AND pg_get_constraintdef(c.oid) LIKE '%' || $3 || ' = ANY%'",
            schema,
            name,
            f"({column}",
        )
    assert definition, f"no CHECK on {table}.{column}"
    allowed = re.findall(r"'([^']+)'::text", definition)
    assert sorted(allowed) == sorted(member.value for member in CHECKED_COLUMNS[(table, column)])
