"""Response bodies of mailboxes, messages, conversations and suppressions."""

from __future__ import annotations

import uuid

from leadflood.core.api import ApiModel, deprecated_alias

# Typed rows that are their own responses (their fields are the allow-list).
from leadflood.messaging.repository import ConversationHeader as ConversationHeader
from leadflood.messaging.repository import ConversationListItem as ConversationListItem
from leadflood.messaging.repository import Mailbox as Mailbox
from leadflood.messaging.repository import Message as Message
from leadflood.messaging.repository import Suppression as Suppression
from leadflood.messaging.repository import Thread as Thread
from leadflood.messaging.repository import UnmatchedInbound as UnmatchedInbound


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
    bounce_type: str | None = None  # hard | soft
    retry: bool | None = None  # a soft bounce: the message goes out again later
