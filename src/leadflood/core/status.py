"""The statuses the database holds, as StrEnums: one spelling in code and in the schema.

PostgreSQL enum types and CHECK constraints define them; tests/core/test_statuses.py
holds each class to its type or constraint, so a migration that adds a status fails the
suite until the code knows it. A member equals its string (its name), so rows read from
the database compare with members directly.
"""

from __future__ import annotations

from enum import StrEnum

# Enum types.
LeadStatus = StrEnum(
    "LeadStatus", "received validated rejected routed delivered delivery_failed returned unsold"
)
DeliveryStatus = StrEnum("DeliveryStatus", "pending in_progress succeeded failed")
# `rejected`: the buyer answered, and refused this lead (issue 16).
AttemptOutcome = StrEnum("AttemptOutcome", "success retryable_error permanent_error rejected")
BillingStatus = StrEnum("BillingStatus", "unbilled billable invoiced credited non_billable")
InvoiceStatus = StrEnum("InvoiceStatus", "draft issued paid void")

# CHECK-constrained text columns.
ReturnStatus = StrEnum("ReturnStatus", "pending accepted rejected")  # lead_returns
BuyerStatus = StrEnum("BuyerStatus", "active paused")  # buyers
# outreach.job_executions, search_runs and enrichment_runs
ExecutionStatus = StrEnum("ExecutionStatus", "queued running completed failed")
MessageStatus = StrEnum("MessageStatus", "queued sent delivered failed bounced received")
EnrollmentStatus = StrEnum("EnrollmentStatus", "active completed stopped")
SequenceStatus = StrEnum("SequenceStatus", "draft active paused")
ProspectStatus = StrEnum("ProspectStatus", "new processing enriched failed")  # outreach.leads
