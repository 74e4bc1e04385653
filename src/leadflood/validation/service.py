"""Validate one lead: field rules, consent and duplicates, then a guarded transition."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

import asyncpg

from leadflood.core.status import LeadStatus
from leadflood.validation import repository as repo
from leadflood.validation.checks import field_reasons
from leadflood.validation.rules import parse_rules


@dataclass(frozen=True)
class ValidationResult:
    lead_id: uuid.UUID
    status: str | None
    reasons: tuple[str, ...] = ()
    duplicate_of: uuid.UUID | None = None
    changed: bool = False


async def validate_lead(conn: asyncpg.Connection, lead_id: uuid.UUID) -> ValidationResult:
    lead = await repo.load(conn, lead_id)
    if lead is None:
        return ValidationResult(lead_id, None)
    if lead.status != LeadStatus.received:
        # Already past this stage: a no-op that reports the current state.
        return ValidationResult(lead_id, lead.status)

    rules = parse_rules(lead.rules)
    reasons = field_reasons(lead, rules, lead.country)
    duplicate_of = None
    if rules.checks_duplicates:
        duplicate_of = await repo.earliest_duplicate(
            conn,
            lead,
            scope=rules.duplicate_scope,
            match=rules.duplicate_match,
            window_hours=rules.duplicate_window_hours,
        )
        if duplicate_of is not None:
            reasons.add("duplicate")

    ordered = tuple(sorted(reasons))
    if ordered:
        changed = await repo.mark_rejected(conn, lead_id, list(ordered), duplicate_of)
    else:
        changed = await repo.mark_validated(conn, lead_id)
    status = (
        ("rejected" if ordered else "validated")
        if changed
        else (await repo.current_status(conn, lead_id))
    )
    return ValidationResult(lead_id, status, ordered, duplicate_of, changed)
