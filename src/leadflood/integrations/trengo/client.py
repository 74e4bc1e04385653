"""Trengo: send WhatsApp/SMS messages and check inbound webhook signatures.

Outbound: `POST /api/v2/messages` (free text: SMS, or WhatsApp inside the 24-hour window
after the contact wrote) and `POST /api/v2/wa_sessions` (a WhatsApp conversation started
with an approved template: `recipient_phone_number`, `hsm_id`, `params` as key/value
pairs), with `Authorization: Bearer <token>`; Trengo allows 120 requests a minute and
answers 429 with `Retry-After` beyond that.
Inbound webhooks are form-encoded and signed: `Trengo-Signature: <timestamp>;<hex
HMAC-SHA256 of "<timestamp>.<raw body>" with the webhook secret>`.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from datetime import timedelta
from typing import Any

import orjson

from leadflood.core.providers import (
    excerpt,
    raise_for_status,
)
from leadflood.integrations import http

PROVIDER = "trengo"
MESSAGES_PATH = "/api/v2/messages"
WA_SESSIONS_PATH = "/api/v2/wa_sessions"
SIGNATURE_TOLERANCE = timedelta(minutes=5)


class TrengoClient:
    def __init__(self, token: str, base_url: str, timeout_s: float = 15.0) -> None:
        self._http = http.client(
            base_url, timeout_s, {"Authorization": f"Bearer {token}", "Accept": "application/json"}
        )

    async def close(self) -> None:
        await self._http.aclose()

    async def send_message(self, *, channel_id: int, to: str, body: str) -> dict[str, Any]:
        payload = {"channel_id": channel_id, "contact_identifier": to, "message": body}
        return await self._post(MESSAGES_PATH, payload)

    async def start_whatsapp(
        self, *, to: str, template_id: int, params: list[str]
    ) -> dict[str, Any]:
        """A WhatsApp conversation begun with an approved template; `params` fill its
        placeholders {{1}}, {{2}}... in order."""
        payload = {
            "recipient_phone_number": to,
            "hsm_id": template_id,
            "params": [{"key": f"{{{{{n}}}}}", "value": v} for n, v in enumerate(params, 1)],
        }
        return await self._post(WA_SESSIONS_PATH, payload)

    async def _post(self, path: str, payload: dict[str, Any]) -> dict[str, Any]:
        request = self._http.build_request(
            "POST",
            path,
            content=orjson.dumps(payload),
            headers={"Content-Type": "application/json"},
        )
        response = await http.send(PROVIDER, self._http, request)
        status = response.status_code
        raise_for_status(
            PROVIDER,
            status,
            excerpt(response.text),
            retry_after=(http.retry_after(response) or timedelta(seconds=30))
            if status == 429
            else None,
        )
        try:
            return response.json()
        except ValueError:
            return {}


def sign(secret: str, body: bytes, timestamp: int | None = None) -> str:
    ts = int(time.time()) if timestamp is None else timestamp
    digest = hmac.new(secret.encode(), f"{ts}.".encode() + body, hashlib.sha256).hexdigest()
    return f"{ts};{digest}"


def verify(secret: str, body: bytes, header: str | None, now: float | None = None) -> bool:
    if not header or ";" not in header:
        return False
    timestamp, _, digest = header.partition(";")
    if not timestamp.isdigit():
        return False
    if abs((now or time.time()) - int(timestamp)) > SIGNATURE_TOLERANCE.total_seconds():
        return False  # an old signature replayed
    expected = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return hmac.compare_digest(expected.hexdigest(), digest.strip())
