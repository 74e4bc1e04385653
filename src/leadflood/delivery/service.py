"""Deliver one routed lead: one attempt per job, recorded, retried on schedule (§7)."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

import structlog

from leadflood.core.jobs import DELIVER_LEAD, enqueue_raw
from leadflood.core.runtime import Runtime
from leadflood.core.security import decrypt_secret
from leadflood.delivery import repository as repo
from leadflood.delivery.channels import AttemptResult, DeliveryChannel, Outbound, build_channels
from leadflood.delivery.payload import build_payload, digest, headers, serialize
from leadflood.delivery.policy import MAX_ATTEMPTS, NOT_DUE_TOLERANCE, next_delay

log = structlog.get_logger("leadflood.delivery")


@dataclass(frozen=True)
class DeliveryOutcome:
    lead_id: uuid.UUID
    # delivered | retry_scheduled | failed | already_delivered | already_failed
    # | busy (another worker holds it) | not_due | not_found
    result: str
    attempt_no: int | None = None
    attempt: AttemptResult | None = None


class DeliveryService:
    def __init__(
        self, runtime: Runtime, channels: dict[str, DeliveryChannel] | None = None
    ) -> None:
        self.runtime = runtime
        self.channels = channels or build_channels(runtime.webhook_session, runtime.settings)

    async def deliver(self, lead_id: uuid.UUID) -> DeliveryOutcome:
        async with self.runtime.db.raw() as conn, conn.transaction():
            row = await repo.claim(conn, lead_id)
            if row is None:
                exists = await repo.delivery_exists(conn, lead_id)
                return DeliveryOutcome(lead_id, "busy" if exists else "not_found")
            if row["delivery_status"] == "succeeded":
                return DeliveryOutcome(lead_id, "already_delivered")
            if row["delivery_status"] == "failed":
                return DeliveryOutcome(lead_id, "already_failed")
            now = datetime.now(UTC)
            due = row["next_attempt_at"]
            if due is not None and due > now + NOT_DUE_TOLERANCE:
                # An early duplicate job: the scheduled retry job owns the next attempt.
                return DeliveryOutcome(lead_id, "not_due")

            attempt_no = row["attempt_count"] + 1
            message = self._message(row)
            started = datetime.now(UTC)
            clock = time.perf_counter()
            result = await self._send(row["channel"], message)
            duration_ms = round((time.perf_counter() - clock) * 1000, 3)
            attempt = {
                "delivery_id": row["delivery_id"],
                "attempt_no": attempt_no,
                "started_at": started,
                "finished_at": datetime.now(UTC),
                "duration_ms": duration_ms,
                "request_digest": digest(message.body),
                "http_status": result.http_status,
                "response_excerpt": result.response_excerpt,
                "outcome": result.outcome,
                "error": result.error,
            }
            return await self._record(conn, row, attempt, result)

    async def redeliver(self, lead_id: uuid.UUID) -> bool:
        """Re-open a failed delivery for a new round of attempts; False if not failed."""
        async with self.runtime.db.raw() as conn, conn.transaction():
            if not await repo.reopen_failed(conn, lead_id):
                return False
            await enqueue_raw(conn, DELIVER_LEAD, {"lead_id": str(lead_id)})
        log.info("delivery_reopened", lead_id=str(lead_id))
        return True

    async def _send(self, channel: str, message: Outbound) -> AttemptResult:
        sender = self.channels.get(channel)
        if sender is None:
            return AttemptResult(
                "permanent_error", error=f"delivery_channel_unconfigured: {channel}"
            )
        return await sender.send(message)

    def _message(self, row: dict) -> Outbound:
        secret = None
        if row["webhook_secret"]:
            secret = decrypt_secret(
                row["webhook_secret"], self.runtime.settings.secret_key.get_secret_value()
            )
        body = serialize(build_payload(row))
        lead_id = str(row["lead_id"])
        return Outbound(
            lead_id=lead_id,
            body=body,
            headers=headers(lead_id, body, secret),
            webhook_url=row["webhook_url"],
            email=row["buyer_email"],
            secret=secret,
            timeout_ms=row["delivery_timeout_ms"],
            subject=f"New lead: {row['offer_name']} — {row['market_name']}",
        )

    async def _record(
        self, conn, row: dict, attempt: dict, result: AttemptResult
    ) -> DeliveryOutcome:
        lead_id: uuid.UUID = row["lead_id"]
        attempt_no = attempt["attempt_no"]
        if result.outcome == "success":
            await repo.record_success(conn, attempt, lead_id)
            outcome = "delivered"
        else:
            delay = (
                next_delay(attempt_no - row["round_start"], result.retry_after)
                if (result.outcome == "retryable_error")
                else None
            )
            if delay is not None:
                await repo.record_retry(conn, attempt, attempt["finished_at"] + delay)
                await enqueue_raw(conn, DELIVER_LEAD, {"lead_id": str(lead_id)}, delay=delay)
                outcome = "retry_scheduled"
            else:
                await repo.record_failure(conn, attempt, lead_id)
                outcome = "failed"
        log.info(
            "delivery_attempt",
            lead_id=str(lead_id),
            attempt=attempt_no,
            max_attempts=MAX_ATTEMPTS,
            outcome=result.outcome,
            result=outcome,
            http_status=result.http_status,
            error=result.error,
        )
        return DeliveryOutcome(lead_id, outcome, attempt_no, result)
