"""Request bodies of mailboxes, replies and suppressions (unknown fields refused)."""

from __future__ import annotations

import re
from datetime import time
from typing import Annotated, Literal

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


def _host(value: str) -> str:
    value = single_line(value.strip().lower())
    if not re.fullmatch(r"[a-z0-9]([a-z0-9.-]{0,251}[a-z0-9])?|\[[0-9a-f:.]+\]", value):
        raise ValueError("not a host name")
    return value


Host = Annotated[str, StringConstraints(min_length=1, max_length=253), AfterValidator(_host)]
Login = Annotated[str, StringConstraints(min_length=1, max_length=320), AfterValidator(single_line)]
# Write-only: stored encrypted, never returned; omitted on an update keeps the stored one.
Password = Annotated[
    str, StringConstraints(min_length=1, max_length=1000), AfterValidator(single_line)
]


class SmtpIn(Strict):
    """The mailbox's own outgoing server (else the server in LEADFLOOD_SMTP_*)."""

    host: Host
    port: int = Field(587, ge=1, le=65535)
    security: Literal["starttls", "tls", "none"] = "starttls"
    username: Login | None = None
    password: Password | None = None


class ImapIn(Strict):
    """The mailbox's inbox, polled for replies and bounces."""

    host: Host
    port: int = Field(993, ge=1, le=65535)
    security: Literal["tls", "starttls", "none"] = "tls"
    username: Login
    password: Password | None = None
    # One line: a folder name goes into an IMAP command.
    folder: Annotated[
        str, StringConstraints(min_length=1, max_length=200), AfterValidator(single_line)
    ] = "INBOX"


class MailboxIn(Strict):
    name: Name
    from_email: Annotated[str, AfterValidator(_email)]
    from_name: Annotated[str, StringConstraints(max_length=200), AfterValidator(single_line)] = ""
    timezone: Timezone = "UTC"
    daily_limit: int = Field(200, ge=0, le=100_000)
    window_start: LocalTime = time(8, 0)
    window_end: LocalTime = time(18, 0)
    active: bool = True
    smtp: SmtpIn | None = None
    imap: ImapIn | None = None
    # Cadence: at least min_spacing_s between two sends, plus up to jitter_s at random.
    min_spacing_s: int = Field(60, ge=0, le=86_400)
    jitter_s: int = Field(30, ge=0, le=86_400)
    # Warm-up: a new address starts at warmup_start a day and adds warmup_step each day,
    # up to daily_limit. None: no ramp.
    warmup_start: int | None = Field(None, ge=1, le=100_000)
    warmup_step: int = Field(0, ge=0, le=10_000)
    # Above this share of bounced sends (over the last 7 days, from 20 sends on) the
    # mailbox pauses itself.
    bounce_pause_rate: float = Field(0.05, gt=0, le=1)


class ReplyIn(Strict):
    body: Annotated[str, StringConstraints(min_length=1, max_length=20_000)]
    subject: HeaderText | None = None


class SuppressionIn(Strict):
    address: Annotated[str, StringConstraints(min_length=3, max_length=320)]
    detail: Annotated[str, StringConstraints(max_length=500)] = ""
