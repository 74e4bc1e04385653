"""A catch-all SMTP server for local use: accepts every message and keeps it in
`outreach.sink_messages`, where the web UI shows it. Never for production."""

from __future__ import annotations

import email
import email.policy
from typing import Any

import asyncpg
from aiosmtpd.controller import Controller


class _Keep:
    def __init__(self, database_url: str) -> None:
        self.database_url = database_url

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        raw = envelope.content if isinstance(envelope.content, bytes) else envelope.content.encode()
        parsed = email.message_from_bytes(raw, policy=email.policy.default)
        conn = await asyncpg.connect(self.database_url)
        try:
            await conn.execute(
                "INSERT INTO outreach.sink_messages (mail_from, rcpt_to, subject, "
                "                                    message_id_header, raw) "
                "VALUES ($1, $2, $3, $4, $5)",
                envelope.mail_from,
                list(envelope.rcpt_tos),
                str(parsed.get("Subject") or ""),
                str(parsed.get("Message-ID") or "") or None,
                raw.decode(errors="replace"),
            )
        finally:
            await conn.close()
        return "250 Message accepted for delivery"


def start_sink(database_url: str, port: int, host: str = "127.0.0.1") -> Controller:
    controller = Controller(_Keep(database_url), hostname=host, port=port)
    controller.start()
    return controller
