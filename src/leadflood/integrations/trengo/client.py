"""Trengo: send WhatsApp/SMS messages and check inbound webhook signatures.

Outbound: `POST /api/v2/messages` with `Authorization: Bearer <token>`; Trengo allows
120 requests a minute and answers 429 with `Retry-After` beyond that.
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
        request = self._http.build_request(
            "POST",
            MESSAGES_PATH,
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
