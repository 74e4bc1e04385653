"""Request bodies of sequences and enrollments (unknown fields refused)."""

from __future__ import annotations

import uuid
from datetime import time
from typing import Annotated, Literal

from pydantic import Field, StringConstraints

from leadflood.admin.schemas import Name, Timezone
from leadflood.core.api import LocalTime
from leadflood.messaging.schemas import HeaderText, Strict


class StepIn(Strict):
    channel: Literal["email", "whatsapp", "sms"] = "email"
    delay_minutes: int = Field(0, ge=0, le=60 * 24 * 90)
    subject_template: HeaderText = ""
    body_template: Annotated[str, StringConstraints(min_length=1, max_length=20_000)]
    # WhatsApp: a business writing first (outside the 24-hour window) must use a template
    # Meta approved; this is its id in Trengo, and its parameters {{1}}, {{2}}... as
    # templates over the lead. body_template is what the step reads like (shown, logged).
    whatsapp_template_id: int | None = Field(None, ge=1, le=2**53)
    template_params: Annotated[list[HeaderText], Field(max_length=10)] = []


class SequenceIn(Strict):
    name: Name
    mailbox_id: uuid.UUID | None = None
    # More mailboxes to rotate over: each lead is written from one of them, least used first.
    mailbox_ids: Annotated[list[uuid.UUID], Field(max_length=50)] = []
    steps: Annotated[list[StepIn], Field(min_length=1, max_length=20)]
    # WhatsApp/SMS steps wait out these hours (where start > end, across midnight), in the
    # lead's zone when their number names one, else in `timezone`. Both null: no quiet hours.
    quiet_start: LocalTime | None = time(20, 0)
    quiet_end: LocalTime | None = time(9, 0)
    timezone: Timezone = "UTC"


class EnrollIn(Strict):
    lead_ids: Annotated[list[uuid.UUID], Field(min_length=1, max_length=1000)]
