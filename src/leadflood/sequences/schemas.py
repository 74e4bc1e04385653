"""Request bodies of sequences, mailboxes and enrollments (unknown fields refused)."""

from __future__ import annotations

import uuid
from datetime import time
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints

from leadflood.admin.schemas import Name, Timezone
from leadflood.core.text import single_line

# A header value (subject, display name): one line, so it can never split a header.
HeaderText = Annotated[str, StringConstraints(max_length=500), AfterValidator(single_line)]


def _email(value: str) -> str:
    value = single_line(value.strip().lower())
    if "@" not in value or " " in value:
        raise ValueError("not an email address")
    return value


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class MailboxIn(Strict):
    name: Name
    from_email: Annotated[str, AfterValidator(_email)]
    from_name: Annotated[str, StringConstraints(max_length=200), AfterValidator(single_line)] = ""
    timezone: Timezone = "UTC"
    daily_limit: int = Field(200, ge=0, le=100_000)
    window_start: time = time(8, 0)
    window_end: time = time(18, 0)
    active: bool = True


class StepIn(Strict):
    channel: Literal["email", "whatsapp", "sms"] = "email"
    delay_minutes: int = Field(0, ge=0, le=60 * 24 * 90)
    subject_template: HeaderText = ""
    body_template: Annotated[str, StringConstraints(min_length=1, max_length=20_000)]


class SequenceIn(Strict):
    name: Name
    mailbox_id: uuid.UUID | None = None
    steps: Annotated[list[StepIn], Field(min_length=1, max_length=20)]


class EnrollIn(Strict):
    lead_ids: Annotated[list[uuid.UUID], Field(min_length=1, max_length=1000)]


class ReplyIn(Strict):
    body: Annotated[str, StringConstraints(min_length=1, max_length=20_000)]
    subject: HeaderText | None = None
