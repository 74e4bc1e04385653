"""All SQL of conversations, messages, delivery attempts and processed inbound events."""

from __future__ import annotations

import uuid
from typing import Any

from leadflood.core.uow import Conn


async def lead_by_address(conn: Conn, address: str) -> dict[str, Any] | None:
    row = await conn.fetchrow(
        "SELECT id, email, phone, first_name, last_name FROM outreach.leads "
        "WHERE normalized_email = lower($1)",
        address,
    )
    return dict(row) if row else None


async def lead_by_phone(conn: Conn, digits: str) -> dict[str, Any] | None:
    row = await conn.fetchrow(
        "SELECT id, email, phone FROM outreach.leads "
        "WHERE regexp_replace(coalesce(phone, ''), '[^0-9]', '', 'g') = $1 LIMIT 1",
        digits,
    )
    return dict(row) if row else None


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


async def lead_address(conn: Conn, lead_id: uuid.UUID) -> dict | None:
    row = await conn.fetchrow(
        "SELECT id, normalized_email FROM outreach.leads WHERE id = $1", lead_id
    )
    return dict(row) if row else None


async def sink_messages(conn: Conn, limit: int = 100) -> list[dict[str, Any]]:
    rows = await conn.fetch(
        "SELECT id, mail_from, rcpt_to, subject, message_id_header, received_at "
        "FROM outreach.sink_messages ORDER BY id DESC LIMIT $1",
        limit,
    )
    return [dict(r) for r in rows]


async def sink_message(conn: Conn, sink_id: int) -> dict[str, Any] | None:
    row = await conn.fetchrow("SELECT * FROM outreach.sink_messages WHERE id = $1", sink_id)
    return dict(row) if row else None
