"""Test a buyer: the request its integration builds for a sample lead (a dry run, with
secrets masked), and on request the real send, its raw answer and how the rules read it.
The sample goes through the same building and sending code as a real delivery."""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from leadflood.core.errors import NotFound
from leadflood.core.rows import as_fields
from leadflood.core.runtime import Runtime
from leadflood.core.uow import unit_of_work
from leadflood.delivery import repository as repo
from leadflood.delivery.channels import WebhookChannel
from leadflood.delivery.repository import ClaimedAttempt
from leadflood.delivery.service import DeliveryService

MASK = "••••••"
SAMPLE_CONTACT: dict[str, Any] = {
    "first_name": "Test",
    "last_name": "Lead",
    "email": "test.lead@example.com",
    "phone": "+16025550101",
    "normalized_phone": "+16025550101",
    "address": "100 Main St",
    "city": "Phoenix",
    "state": "AZ",
    "postal_code": "85001",
    "consent": True,
    "consent_text": "I agree to be contacted.",
    "consent_certificate_url": "https://cert.trustedform.com/0123456789abcdef",
}


def _sample(found: repo.BuyerSample) -> ClaimedAttempt:
    now = datetime.now(UTC)
    return ClaimedAttempt(
        **SAMPLE_CONTACT,
        **as_fields(found),
        delivery_id=uuid.uuid4(),
        attempt_no=1,
        round_start=0,
        lead_id=uuid.uuid4(),
        lead_status="routed",
        raw_payload={"test": "true"},
        received_at=now,
        routed_at=now,
    )


async def test_buyer(
    runtime: Runtime, buyer_id: uuid.UUID, offer_id: uuid.UUID | None, *, send: bool
) -> dict[str, Any]:
    """The boundary of its own work: the read in one unit, the send with nothing held."""
    async with unit_of_work(runtime.db) as tx:
        found = await repo.sample_for_buyer(tx, buyer_id, offer_id)
    if found is None:
        raise NotFound("buyer_offer_not_found", "the buyer takes no such offer (or none)")
    service = DeliveryService(runtime)
    message = service.build_message(_sample(found))
    # Marked, so a buyer's system can tell the sample from a lead it must pay for.
    message = replace(message, headers={**message.headers, "X-Leadflood-Test": "true"})
    hidden = {name.lower() for name in ("Authorization", "X-Leadflood-Signature")}
    secrets = [s for s in (message.secret, *message.hidden) if s]
    shown_headers = {
        name: MASK if name.lower() in hidden or value in secrets else value
        for name, value in message.headers.items()
    }
    body = message.body.decode("utf-8", "replace")
    for secret in secrets:
        body = body.replace(secret, MASK)
    answer: dict[str, Any] = {
        "channel": found.channel,
        "request": {
            "method": message.method,
            "url": message.webhook_url,
            "headers": shown_headers,
            "body": body,
        },
        "problem": message.problem,
        "sent": False,
        "response": None,
    }
    if not send or message.problem or found.channel != "webhook":
        return answer
    result = await WebhookChannel(runtime.webhook_session, runtime.settings).send(message)
    answer["sent"] = True
    answer["response"] = {
        "status": result.http_status,
        "body": result.response_excerpt,
        "outcome": "accepted" if result.outcome == "success" else result.outcome,
        "reason": result.reason,
        "reference": result.reference,
        "price_cents": result.price_cents,
        "error": result.error,
    }
    return answer
