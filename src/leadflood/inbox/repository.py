"""All SQL of inbound events, the leads they come from and the SMTP sink's caught mail."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from leadflood.core.uow import Conn


@dataclass(frozen=True, slots=True, kw_only=True)
class Sender:
    """The outreach lead an inbound message comes from (or a bounce is about)."""

    id: uuid.UUID
    normalized_email: str | None


@dataclass(frozen=True, slots=True, kw_only=True)
class CaughtMailItem:
    id: int
    mail_from: str
    rcpt_to: list[str]
    subject: str
    message_id_header: str | None
    received_at: datetime


@dataclass(frozen=True, slots=True, kw_only=True)
class CaughtMail(CaughtMailItem):
    raw: str


SENDER_COLUMNS = "id, normalized_email"
SINK_COLUMNS = "id, mail_from, rcpt_to, subject, message_id_header, received_at"


async def lead_by_address(conn: Conn, address: str) -> Sender | None:
    row = await conn.fetchrow(
        f"SELECT {SENDER_COLUMNS} FROM outreach.leads WHERE normalized_email = lower($1)",
        address,
    )
    return Sender(**row) if row else None


async def lead_by_phone(conn: Conn, digits: str) -> Sender | None:
    row = await conn.fetchrow(
        f"SELECT {SENDER_COLUMNS} FROM outreach.leads "
        "WHERE regexp_replace(coalesce(phone, ''), '[^0-9]', '', 'g') = $1 LIMIT 1",
        digits,
    )
    return Sender(**row) if row else None


async def lead_address(conn: Conn, lead_id: uuid.UUID) -> Sender | None:
    row = await conn.fetchrow(f"SELECT {SENDER_COLUMNS} FROM outreach.leads WHERE id = $1", lead_id)
    return Sender(**row) if row else None


async def mark_do_not_contact(conn: Conn, lead_id: uuid.UUID) -> None:
    await conn.execute("UPDATE outreach.leads SET do_not_contact = true WHERE id = $1", lead_id)


async def claim_event(conn: Conn, provider: str, event_id: str) -> bool:
    """False when this provider event was processed before (webhook redelivery)."""
    return (
        await conn.fetchval(
            "INSERT INTO outreach.inbound_events (provider, event_id) VALUES ($1, $2) "
            "ON CONFLICT DO NOTHING RETURNING 1",
            provider,
            event_id,
        )
        is not None
    )


async def sink_messages(conn: Conn, limit: int = 100) -> list[CaughtMailItem]:
    rows = await conn.fetch(
        f"SELECT {SINK_COLUMNS} FROM outreach.sink_messages ORDER BY id DESC LIMIT $1", limit
    )
    return [CaughtMailItem(**r) for r in rows]


async def sink_message(conn: Conn, sink_id: int) -> CaughtMail | None:
    row = await conn.fetchrow(
        f"SELECT {SINK_COLUMNS}, raw FROM outreach.sink_messages WHERE id = $1", sink_id
    )
    return CaughtMail(**row) if row else None
