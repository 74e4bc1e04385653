"""The statuses the database holds, as StrEnums: one spelling in code and in the schema.

PostgreSQL enum types and CHECK constraints define them; tests/core/test_statuses.py
holds each class to its type or constraint, so a migration that adds a status fails the
suite until the code knows it. A StrEnum member equals its string, so rows read from the
database compare with members directly.
"""

from __future__ import annotations

from enum import StrEnum


class LeadStatus(StrEnum):  # lead_status
    received = "received"
    validated = "validated"
    rejected = "rejected"
    routed = "routed"
    delivered = "delivered"
    delivery_failed = "delivery_failed"
    returned = "returned"
    unsold = "unsold"


class DeliveryStatus(StrEnum):  # delivery_status
    pending = "pending"
    in_progress = "in_progress"
    succeeded = "succeeded"
    failed = "failed"


class AttemptOutcome(StrEnum):  # attempt_outcome
    success = "success"
    retryable_error = "retryable_error"
    permanent_error = "permanent_error"


class BillingStatus(StrEnum):  # billing_status
    unbilled = "unbilled"
    billable = "billable"
    invoiced = "invoiced"
    credited = "credited"
    non_billable = "non_billable"


class InvoiceStatus(StrEnum):  # invoice_status
    draft = "draft"
    issued = "issued"
    paid = "paid"
    void = "void"


class ReturnStatus(StrEnum):  # lead_returns.status
    pending = "pending"
    accepted = "accepted"
    rejected = "rejected"


class BuyerStatus(StrEnum):  # buyers.status
    active = "active"
    paused = "paused"


class ExecutionStatus(StrEnum):  # outreach.job_executions / search_runs / enrichment_runs
    queued = "queued"
    running = "running"
    completed = "completed"
    failed = "failed"


class MessageStatus(StrEnum):  # outreach.messages.status
    queued = "queued"
    sent = "sent"
    delivered = "delivered"
    failed = "failed"
    bounced = "bounced"
    received = "received"


class EnrollmentStatus(StrEnum):  # outreach.enrollments.status
    active = "active"
    completed = "completed"
    stopped = "stopped"


class SequenceStatus(StrEnum):  # outreach.sequences.status
    draft = "draft"
    active = "active"
    paused = "paused"


class ProspectStatus(StrEnum):  # outreach.leads.status
    new = "new"
    processing = "processing"
    enriched = "enriched"
    failed = "failed"
