"""Response bodies of mailboxes, messages, conversations and suppressions."""

from __future__ import annotations

import uuid
from datetime import datetime, time

from leadflood.core.api import ApiModel, deprecated_alias


class Mailbox(ApiModel):
    id: uuid.UUID
    name: str
    from_email: str
    from_name: str | None = None
    timezone: str
    daily_limit: int
    window_start: time
    window_end: time
    active: bool
    created_at: datetime
    updated_at: datetime


class Suppression(ApiModel):
    address: str
    reason: str
    detail: str | None = None
    created_at: datetime | None = None


class Message(ApiModel):
    id: uuid.UUID
    conversation_id: uuid.UUID
    lead_id: uuid.UUID
    enrollment_id: uuid.UUID | None = None
    step_id: uuid.UUID | None = None
    mailbox_id: uuid.UUID | None = None
    direction: str
    channel: str
    kind: str
    status: str
    from_address: str | None = None
    to_address: str | None = None
    subject: str | None = None
    body: str | None = None
    message_id_header: str | None = None
    in_reply_to: str | None = None
    provider_message_id: str | None = None
    error: str | None = None
    job_id: uuid.UUID | None = None
    sent_at: datetime | None = None
    received_at: datetime | None = None
    created_by: uuid.UUID | None = None
    created_at: datetime
    updated_at: datetime


class ConversationHeader(ApiModel):
    id: uuid.UUID
    lead_id: uuid.UUID
    channel: str
    subject: str | None = None
    unread_count: int
    last_message_at: datetime | None = None
    first_name: str | None = None
    last_name: str | None = None
    email: str | None = None
    company: str | None = None


class ConversationListItem(ConversationHeader):
    preview: str | None = None


class Conversation(ConversationHeader):
    created_at: datetime
    updated_at: datetime
    phone: str | None = None
    messages: list[Message]


class ReplyQueued(ApiModel):
    message_id: uuid.UUID
    job_id: uuid.UUID
    status: str

    messageId = deprecated_alias("message_id", uuid.UUID)
    jobId = deprecated_alias("job_id", uuid.UUID)


class InboundResult(ApiModel):
    outcome: str
    kind: str | None = None
    lead_id: uuid.UUID | None = None
    stopped: int | None = None
    reason: str | None = None
