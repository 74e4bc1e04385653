"""Request bodies of sequences and enrollments (unknown fields refused)."""

from __future__ import annotations

import uuid
from typing import Annotated, Literal

from pydantic import Field, StringConstraints

from leadflood.admin.schemas import Name
from leadflood.messaging.schemas import HeaderText, Strict


class StepIn(Strict):
    channel: Literal["email", "whatsapp", "sms"] = "email"
    delay_minutes: int = Field(0, ge=0, le=60 * 24 * 90)
    subject_template: HeaderText = ""
    body_template: Annotated[str, StringConstraints(min_length=1, max_length=20_000)]


class SequenceIn(Strict):
    name: Name
    mailbox_id: uuid.UUID | None = None
    # More mailboxes to rotate over: each lead is written from one of them, least used first.
    mailbox_ids: Annotated[list[uuid.UUID], Field(max_length=50)] = []
    steps: Annotated[list[StepIn], Field(min_length=1, max_length=20)]


class EnrollIn(Strict):
    lead_ids: Annotated[list[uuid.UUID], Field(min_length=1, max_length=1000)]
