"""All SQL of messages, conversations, send attempts, mailboxes and suppressions."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from leadflood.core.api import LocalTime
from leadflood.core.uow import Conn

MESSAGE_COLUMNS = (
    "id, conversation_id, lead_id, enrollment_id, step_id, mailbox_id, direction, channel, kind, "
    "status, from_address, to_address, subject, body, message_id_header, in_reply_to, "
    "provider_message_id, error, job_id, sent_at, received_at, created_by, created_at, updated_at, "
    "full_body, not_before, soft_bounces"
)


@dataclass(frozen=True, slots=True, kw_only=True)
class Message:
    """A message in or out (the columns of MESSAGE_COLUMNS)."""

    id: uuid.UUID
    conversation_id: uuid.UUID
    lead_id: uuid.UUID
    enrollment_id: uuid.UUID | None
    step_id: uuid.UUID | None
    mailbox_id: uuid.UUID | None
    direction: str
    channel: str
    kind: str
    status: str
    from_address: str | None
    to_address: str | None
    subject: str | None
    body: str | None
    message_id_header: str | None
    in_reply_to: str | None
    provider_message_id: str | None
    error: str | None
    job_id: uuid.UUID | None
    sent_at: datetime | None
    received_at: datetime | None
    created_by: uuid.UUID | None
    created_at: datetime
    updated_at: datetime
    full_body: str | None  # an inbound email's whole text; `body` is the reply itself
    not_before: datetime | None  # the send slot this message holds on its mailbox
    soft_bounces: int


@dataclass(frozen=True, slots=True, kw_only=True)
class ConversationHeader:
    id: uuid.UUID
    lead_id: uuid.UUID
    channel: str
    subject: str | None
    unread_count: int
    last_message_at: datetime | None
    first_name: str | None
    last_name: str | None
    email: str | None
    company: str | None


@dataclass(frozen=True, slots=True, kw_only=True)
class ConversationListItem(ConversationHeader):
    preview: str | None


@dataclass(frozen=True, slots=True, kw_only=True)
class Conversation(ConversationHeader):
    created_at: datetime
    updated_at: datetime
    phone: str | None


@dataclass(frozen=True, slots=True, kw_only=True)
class Thread(Conversation):
    messages: list[Message]


@dataclass(frozen=True, slots=True, kw_only=True)
class HeaderRef:
    """The Message-ID header and subject of a message a reply answers."""

    message_id_header: str | None
    subject: str | None


@dataclass(frozen=True, slots=True, kw_only=True)
class Mailbox:
    """A sending identity. Passwords never leave the database in this row: only whether
    one is set (`MailboxSecrets` carries them, encrypted, to the SMTP and IMAP clients)."""

    id: uuid.UUID
    name: str
    from_email: str
    from_name: str | None
    timezone: str
    daily_limit: int
    window_start: LocalTime
    window_end: LocalTime
    active: bool
    smtp_host: str | None
    smtp_port: int | None
    smtp_security: str
    smtp_username: str | None
    smtp_password_set: bool
    imap_host: str | None
    imap_port: int | None
    imap_security: str
    imap_username: str | None
    imap_password_set: bool
    imap_folder: str
    imap_last_uid: int
    imap_checked_at: datetime | None
    imap_error: str | None
    min_spacing_s: int
    jitter_s: int
    warmup_start: int | None
    warmup_step: int
    warmup_started_on: date | None
    bounce_pause_rate: float
    paused_reason: str | None
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True, slots=True, kw_only=True)
class MailboxSecrets:
    """What the SMTP and IMAP clients need, passwords still encrypted."""

    id: uuid.UUID
    smtp_host: str | None
    smtp_port: int | None
    smtp_security: str
    smtp_username: str | None
    smtp_password_enc: str | None
    imap_host: str | None
    imap_port: int | None
    imap_security: str
    imap_username: str | None
    imap_password_enc: str | None
    imap_folder: str
    imap_uidvalidity: int | None
    imap_last_uid: int


@dataclass(frozen=True, slots=True, kw_only=True)
class UnmatchedInbound:
    id: int
    channel: str
    mailbox_id: uuid.UUID | None
    kind: str
    reason: str
    from_address: str
    to_address: str
    subject: str
    body: str
    message_id_header: str | None
    received_at: datetime


@dataclass(frozen=True, slots=True, kw_only=True)
class Suppression:
    address: str
    reason: str
    detail: str | None
    created_at: datetime | None


async def conversation_for(
    conn: Conn, lead_id: uuid.UUID, channel: str, subject: str = ""
) -> uuid.UUID:
    return await conn.fetchval(
        "INSERT INTO outreach.conversations (lead_id, channel, subject) VALUES ($1, $2, $3) "
        "ON CONFLICT (lead_id, channel) DO UPDATE SET subject = CASE "
        "  WHEN outreach.conversations.subject = '' THEN EXCLUDED.subject "
        "  ELSE outreach.conversations.subject END "
        "RETURNING id",
        lead_id,
        channel,
        subject,
    )


async def insert_message(conn: Conn, values: dict[str, Any]) -> uuid.UUID | None:
    """None when the row would repeat a step already sent (or a known Message-ID)."""
    columns = list(values)
    return await conn.fetchval(
        f"INSERT INTO outreach.messages ({', '.join(columns)}) "
        f"VALUES ({', '.join(f'${i}' for i in range(1, len(columns) + 1))}) "
        "ON CONFLICT DO NOTHING RETURNING id",
        *values.values(),
    )


async def set_message_job(conn: Conn, message_id: uuid.UUID, job_id: uuid.UUID):
    await conn.execute("UPDATE outreach.messages SET job_id = $2 WHERE id = $1", message_id, job_id)


async def get_message(conn: Conn, message_id: uuid.UUID) -> Message | None:
    row = await conn.fetchrow(
        f"SELECT {MESSAGE_COLUMNS} FROM outreach.messages WHERE id = $1", message_id
    )
    return Message(**row) if row else None


async def update_message(conn: Conn, message_id: uuid.UUID, values: dict[str, Any]) -> None:
    sets = ", ".join(f"{c} = ${i}" for i, c in enumerate(values, start=2))
    await conn.execute(
        f"UPDATE outreach.messages SET {sets} WHERE id = $1", message_id, *values.values()
    )


async def fail_message(conn: Conn, message_id: uuid.UUID, error: str) -> None:
    """A send that gave up; a refusal already recorded as a bounce stays a bounce."""
    await conn.execute(
        "UPDATE outreach.messages SET status = 'failed', error = $2 "
        "WHERE id = $1 AND status <> 'bounced'",
        message_id,
        error,
    )


async def touch_conversation(
    conn: Conn, conversation_id: uuid.UUID, at: datetime, *, unread: bool
) -> None:
    await conn.execute(
        "UPDATE outreach.conversations SET last_message_at = greatest(last_message_at, $2), "
        "unread_count = unread_count + $3 WHERE id = $1",
        conversation_id,
        at,
        1 if unread else 0,
    )


async def record_attempt(
    conn: Conn,
    message_id: uuid.UUID,
    outcome: str,
    started_at: datetime,
    error: str | None = None,
    response: str | None = None,
) -> None:
    await conn.execute(
        "INSERT INTO outreach.message_delivery_attempts (message_id, attempt_no, outcome, error, "
        "                                                response, started_at) "
        "SELECT $1, coalesce(max(attempt_no), 0) + 1, $2, $3, $4, $5 "
        "FROM outreach.message_delivery_attempts WHERE message_id = $1",
        message_id,
        outcome,
        error,
        response,
        started_at,
    )


async def message_by_header(conn: Conn, header: str) -> Message | None:
    row = await conn.fetchrow(
        f"SELECT {MESSAGE_COLUMNS} FROM outreach.messages WHERE message_id_header = $1", header
    )
    return Message(**row) if row else None


async def list_conversations(
    conn: Conn, *, unread_only: bool, limit: int
) -> list[ConversationListItem]:
    rows = await conn.fetch(
        "SELECT c.id, c.lead_id, c.channel, c.subject, c.unread_count, c.last_message_at, "
        "       l.first_name, l.last_name, l.email, l.company, "
        "       (SELECT left(m.body, 140) FROM outreach.messages m WHERE m.conversation_id = c.id "
        "        ORDER BY m.created_at DESC LIMIT 1) AS preview "
        "FROM outreach.conversations c JOIN outreach.leads l ON l.id = c.lead_id "
        "WHERE ($1 = false OR c.unread_count > 0) "
        "ORDER BY c.last_message_at DESC NULLS LAST, c.id LIMIT $2",
        unread_only,
        limit,
    )
    return [ConversationListItem(**r) for r in rows]


async def get_conversation(conn: Conn, conversation_id: uuid.UUID) -> Conversation | None:
    row = await conn.fetchrow(
        "SELECT c.id, c.lead_id, c.channel, c.subject, c.unread_count, c.last_message_at, "
        "       c.created_at, c.updated_at, l.first_name, l.last_name, l.email, l.phone, l.company "
        "FROM outreach.conversations c JOIN outreach.leads l ON l.id = c.lead_id WHERE c.id = $1",
        conversation_id,
    )
    return Conversation(**row) if row else None


async def thread(conn: Conn, conversation_id: uuid.UUID) -> list[Message]:
    rows = await conn.fetch(
        f"SELECT {MESSAGE_COLUMNS} FROM outreach.messages WHERE conversation_id = $1 "
        "ORDER BY coalesce(sent_at, received_at, created_at), created_at",
        conversation_id,
    )
    return [Message(**r) for r in rows]


async def mark_read(conn: Conn, conversation_id: uuid.UUID) -> None:
    await conn.execute(
        "UPDATE outreach.conversations SET unread_count = 0 WHERE id = $1", conversation_id
    )


async def last_inbound_header(conn: Conn, conversation_id: uuid.UUID) -> HeaderRef | None:
    row = await conn.fetchrow(
        "SELECT message_id_header, subject FROM outreach.messages WHERE conversation_id = $1 "
        "AND direction = 'inbound' AND message_id_header IS NOT NULL "
        "ORDER BY created_at DESC LIMIT 1",
        conversation_id,
    )
    return HeaderRef(**row) if row else None


async def last_inbound_at(conn: Conn, conversation_id: uuid.UUID) -> datetime | None:
    return await conn.fetchval(
        "SELECT max(received_at) FROM outreach.messages WHERE conversation_id = $1 "
        "AND direction = 'inbound'",
        conversation_id,
    )


async def first_sent_email(
    conn: Conn, enrollment_id: uuid.UUID, other_than: uuid.UUID
) -> HeaderRef | None:
    """The first email an enrollment sent: the one its follow-ups answer."""
    row = await conn.fetchrow(
        "SELECT message_id_header, subject FROM outreach.messages "
        "WHERE enrollment_id = $1 AND id <> $2 AND direction = 'outbound' "
        "AND channel = 'email' AND message_id_header IS NOT NULL AND sent_at IS NOT NULL "
        "ORDER BY sent_at, created_at LIMIT 1",
        enrollment_id,
        other_than,
    )
    return HeaderRef(**row) if row else None


async def reply_mailbox(conn: Conn, conversation_id: uuid.UUID) -> uuid.UUID | None:
    """The mailbox the thread was last written from, else the oldest active one."""
    return await conn.fetchval(
        "SELECT coalesce((SELECT mailbox_id FROM outreach.messages WHERE conversation_id = $1 "
        "                  AND mailbox_id IS NOT NULL ORDER BY created_at DESC LIMIT 1), "
        "                (SELECT id FROM outreach.mailboxes WHERE active "
        "                 ORDER BY created_at LIMIT 1))",
        conversation_id,
    )


async def last_outbound_header(conn: Conn, conversation_id: uuid.UUID) -> HeaderRef | None:
    row = await conn.fetchrow(
        "SELECT message_id_header, subject FROM outreach.messages "
        "WHERE conversation_id = $1 AND message_id_header IS NOT NULL "
        "ORDER BY created_at DESC LIMIT 1",
        conversation_id,
    )
    return HeaderRef(**row) if row else None


MAILBOX_COLUMNS = (
    "id, name, from_email, from_name, timezone, daily_limit, window_start, window_end, active, "
    "smtp_host, smtp_port, smtp_security, smtp_username, "
    "smtp_password_enc IS NOT NULL AS smtp_password_set, imap_host, imap_port, imap_security, "
    "imap_username, imap_password_enc IS NOT NULL AS imap_password_set, imap_folder, "
    "imap_last_uid, imap_checked_at, imap_error, min_spacing_s, jitter_s, warmup_start, "
    "warmup_step, warmup_started_on, bounce_pause_rate::float8 AS bounce_pause_rate, "
    "paused_reason, created_at, updated_at"
)
SECRETS_COLUMNS = (
    "id, smtp_host, smtp_port, smtp_security, smtp_username, smtp_password_enc, imap_host, "
    "imap_port, imap_security, imap_username, imap_password_enc, imap_folder, "
    "imap_uidvalidity, imap_last_uid"
)


async def insert_mailbox(conn: Conn, values: dict[str, Any]) -> Mailbox:
    columns = list(values)
    row = await conn.fetchrow(
        f"INSERT INTO outreach.mailboxes ({', '.join(columns)}) "
        f"VALUES ({', '.join(f'${i}' for i in range(1, len(columns) + 1))}) "
        f"RETURNING {MAILBOX_COLUMNS}",
        *values.values(),
    )
    return Mailbox(**row)


async def list_mailboxes(conn: Conn) -> list[Mailbox]:
    rows = await conn.fetch(f"SELECT {MAILBOX_COLUMNS} FROM outreach.mailboxes ORDER BY name")
    return [Mailbox(**r) for r in rows]


async def get_mailbox(conn: Conn, mailbox_id: uuid.UUID) -> Mailbox | None:
    row = await conn.fetchrow(
        f"SELECT {MAILBOX_COLUMNS} FROM outreach.mailboxes WHERE id = $1", mailbox_id
    )
    return Mailbox(**row) if row else None


async def update_mailbox(conn: Conn, mailbox_id: uuid.UUID, values: dict[str, Any]) -> bool:
    sets = ", ".join(f"{c} = ${i}" for i, c in enumerate(values, start=2))
    done = await conn.execute(
        f"UPDATE outreach.mailboxes SET {sets} WHERE id = $1", mailbox_id, *values.values()
    )
    return done != "UPDATE 0"


async def mailbox_in_use(conn: Conn, mailbox_id: uuid.UUID) -> list[str]:
    """The names of live sequences that send from this mailbox."""
    rows = await conn.fetch(
        "SELECT name FROM outreach.sequences WHERE status <> 'draft' "
        "AND (mailbox_id = $1 OR $1 = ANY (mailbox_ids)) ORDER BY name",
        mailbox_id,
    )
    return [r["name"] for r in rows]


async def delete_mailbox(conn: Conn, mailbox_id: uuid.UUID) -> bool:
    """Messages keep their history without the mailbox; draft sequences lose it."""
    await conn.execute(
        "UPDATE outreach.messages SET mailbox_id = NULL WHERE mailbox_id = $1", mailbox_id
    )
    await conn.execute(
        "UPDATE outreach.sequences SET mailbox_id = NULL WHERE mailbox_id = $1", mailbox_id
    )
    await conn.execute(
        "UPDATE outreach.sequences SET mailbox_ids = array_remove(mailbox_ids, $1) "
        "WHERE $1 = ANY (mailbox_ids)",
        mailbox_id,
    )
    done = await conn.execute("DELETE FROM outreach.mailboxes WHERE id = $1", mailbox_id)
    return done != "DELETE 0"


async def mailbox_secrets(conn: Conn, mailbox_id: uuid.UUID) -> MailboxSecrets | None:
    row = await conn.fetchrow(
        f"SELECT {SECRETS_COLUMNS} FROM outreach.mailboxes WHERE id = $1", mailbox_id
    )
    return MailboxSecrets(**row) if row else None


async def mailboxes_to_poll(conn: Conn) -> list[uuid.UUID]:
    rows = await conn.fetch(
        "SELECT id FROM outreach.mailboxes WHERE imap_host IS NOT NULL "
        "AND imap_password_enc IS NOT NULL ORDER BY imap_checked_at NULLS FIRST"
    )
    return [r["id"] for r in rows]


async def set_imap_position(
    conn: Conn, mailbox_id: uuid.UUID, uidvalidity: int, last_uid: int
) -> None:
    """Only forward: a slower poll that overlapped a newer one never moves it back."""
    await conn.execute(
        "UPDATE outreach.mailboxes SET imap_uidvalidity = $2, "
        "imap_last_uid = CASE WHEN imap_uidvalidity IS DISTINCT FROM $2 THEN $3 "
        "                     ELSE greatest(imap_last_uid, $3) END, "
        "imap_checked_at = now(), imap_error = NULL WHERE id = $1",
        mailbox_id,
        uidvalidity,
        last_uid,
    )


async def set_imap_error(conn: Conn, mailbox_id: uuid.UUID, error: str) -> None:
    await conn.execute(
        "UPDATE outreach.mailboxes SET imap_checked_at = now(), imap_error = $2 WHERE id = $1",
        mailbox_id,
        error[:1000],
    )


async def reserve_send_slot(conn: Conn, mailbox_id: uuid.UUID, at: datetime) -> datetime:
    """The mailbox's next free send slot (now, or after the last reserved one), and the
    slot after it taken: spacing plus a random part of the jitter."""
    return await conn.fetchval(
        "WITH slot AS ("
        "  SELECT greatest(coalesce(next_send_at, $2), $2) AS at, min_spacing_s, jitter_s "
        "  FROM outreach.mailboxes WHERE id = $1 FOR UPDATE) "
        "UPDATE outreach.mailboxes m SET next_send_at = slot.at "
        "  + make_interval(secs => slot.min_spacing_s + random() * slot.jitter_s) "
        "FROM slot WHERE m.id = $1 RETURNING slot.at",
        mailbox_id,
        at,
    )


async def bounce_rate(conn: Conn, mailbox_id: uuid.UUID, since: datetime) -> tuple[int, int]:
    """(emails sent, of which bounced) by the mailbox since `since`."""
    row = await conn.fetchrow(
        "SELECT count(*) AS sent, count(*) FILTER (WHERE status = 'bounced') AS bounced "
        "FROM outreach.messages WHERE mailbox_id = $1 AND direction = 'outbound' "
        "AND sent_at >= $2",
        mailbox_id,
        since,
    )
    return row["sent"], row["bounced"]


async def pause_mailbox(conn: Conn, mailbox_id: uuid.UUID, reason: str) -> bool:
    done = await conn.execute(
        "UPDATE outreach.mailboxes SET active = false, paused_reason = $2 WHERE id = $1 AND active",
        mailbox_id,
        reason,
    )
    return done != "UPDATE 0"


async def insert_unmatched(conn: Conn, values: dict[str, Any]) -> int:
    columns = list(values)
    return await conn.fetchval(
        f"INSERT INTO outreach.unmatched_inbound ({', '.join(columns)}) "
        f"VALUES ({', '.join(f'${i}' for i in range(1, len(columns) + 1))}) RETURNING id",
        *values.values(),
    )


async def list_unmatched(conn: Conn, limit: int) -> list[UnmatchedInbound]:
    rows = await conn.fetch(
        "SELECT id, channel, mailbox_id, kind, reason, from_address, to_address, subject, "
        "body, message_id_header, received_at FROM outreach.unmatched_inbound "
        "ORDER BY received_at DESC, id DESC LIMIT $1",
        limit,
    )
    return [UnmatchedInbound(**r) for r in rows]


async def take_send_unit(conn: Conn, mailbox_id: uuid.UUID, day: date, limit: int) -> bool:
    """One unit of the mailbox's daily limit, atomically; False when the day is full."""
    taken = await conn.fetchval(
        "INSERT INTO outreach.mailbox_daily_counts (mailbox_id, day, sent) "
        "SELECT $1, $2, 1 WHERE $3 > 0 "
        "ON CONFLICT (mailbox_id, day) DO UPDATE SET sent = mailbox_daily_counts.sent + 1 "
        "WHERE mailbox_daily_counts.sent < $3 RETURNING sent",
        mailbox_id,
        day,
        limit,
    )
    return taken is not None


async def give_back_unit(conn: Conn, mailbox_id: uuid.UUID, day: date) -> None:
    await conn.execute(
        "UPDATE outreach.mailbox_daily_counts SET sent = sent - 1 "
        "WHERE mailbox_id = $1 AND day = $2 AND sent > 0",
        mailbox_id,
        day,
    )


async def suppress(conn: Conn, address: str, reason: str, detail: str = "") -> None:
    await conn.execute(
        "INSERT INTO outreach.suppressions (address, reason, detail) VALUES (lower($1), $2, $3) "
        "ON CONFLICT (address) DO NOTHING",
        address,
        reason,
        detail[:500],
    )


async def is_suppressed(conn: Conn, address: str) -> bool:
    return bool(
        await conn.fetchval(
            "SELECT 1 FROM outreach.suppressions WHERE address = lower($1)", address
        )
    )


async def get_suppression(conn: Conn, address: str) -> Suppression | None:
    row = await conn.fetchrow(
        "SELECT address, reason, detail, created_at FROM outreach.suppressions "
        "WHERE address = lower($1)",
        address,
    )
    return Suppression(**row) if row else None


async def list_suppressions(conn: Conn, limit: int = 500) -> list[Suppression]:
    rows = await conn.fetch(
        "SELECT address, reason, detail, created_at FROM outreach.suppressions "
        "ORDER BY created_at DESC LIMIT $1",
        limit,
    )
    return [Suppression(**r) for r in rows]
