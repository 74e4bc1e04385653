"""Request bodies of mailboxes, replies and suppressions (unknown fields refused)."""

from __future__ import annotations

from datetime import time
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints

from leadflood.admin.schemas import Name, Timezone
from leadflood.core.api import LocalTime
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
    window_start: LocalTime = time(8, 0)
    window_end: LocalTime = time(18, 0)
    active: bool = True


class ReplyIn(Strict):
    body: Annotated[str, StringConstraints(min_length=1, max_length=20_000)]
    subject: HeaderText | None = None


class SuppressionIn(Strict):
    address: Annotated[str, StringConstraints(min_length=3, max_length=320)]
    detail: Annotated[str, StringConstraints(max_length=500)] = ""
