"""Deliver one routed lead: one attempt per job, recorded, retried on schedule (§7)."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import structlog

from leadflood.core.jobs import DELIVER_LEAD, enqueue_raw
from leadflood.core.runtime import Runtime
from leadflood.core.security import decrypt_secret
from leadflood.delivery import repository as repo
from leadflood.delivery.channels import AttemptResult, DeliveryChannel, Outbound, build_channels
from leadflood.delivery.payload import build_payload, digest, headers, serialize
from leadflood.delivery.policy import NOT_DUE_TOLERANCE, next_delay, schedule_from

log = structlog.get_logger("leadflood.delivery")


@dataclass(frozen=True)
class DeliveryOutcome:
    lead_id: uuid.UUID
    # delivered | retry_scheduled | failed | already_delivered | already_failed
    # | busy (another worker holds it) | not_due (re-queued for when due) | not_found
    # | superseded (this attempt's lease was taken over; nothing recorded)
    # | throttled (the buyer has its limit of attempts in flight; re-queued)
    result: str
    attempt_no: int | None = None
    attempt: AttemptResult | None = None


class DeliveryService:
    def __init__(
        self, runtime: Runtime, channels: dict[str, DeliveryChannel] | None = None
    ) -> None:
        self.runtime = runtime
        self.channels = channels or build_channels(runtime.webhook_session, runtime.settings)
        self.delays = schedule_from(runtime.settings.delivery_retry_schedule_s)

    async def deliver(self, lead_id: uuid.UUID) -> DeliveryOutcome:
        """Claim (commit) → send with no transaction or connection held → record (commit).

        A slow or hanging buyer holds neither a row lock nor a pooled connection, and the
        next attempt's time is counted from when the result is recorded (issue 14).
        """
        claimed = await self._claim(lead_id)
        if isinstance(claimed, DeliveryOutcome):
            return claimed
        row, message, attempt_no = claimed
        clock = time.perf_counter()
        result = await self._send(row["channel"], message)
        attempt = repo.AttemptRecord(
            delivery_id=row["delivery_id"],
            attempt_no=attempt_no,
            duration_ms=round((time.perf_counter() - clock) * 1000, 3),
            http_status=result.http_status,
            response_excerpt=result.response_excerpt,
            outcome=result.outcome,
            error=result.error,
        )
        return await self._record(row, attempt, result)

    async def _claim(self, lead_id: uuid.UUID) -> DeliveryOutcome | tuple[dict, Outbound, int]:
        async with self.runtime.db.raw() as conn, conn.transaction():
            row = await repo.claim(conn, lead_id)
            if row is None:
                exists = await repo.delivery_exists(conn, lead_id)
                return DeliveryOutcome(lead_id, "busy" if exists else "not_found")
            if row["delivery_status"] == "succeeded":
                return DeliveryOutcome(lead_id, "already_delivered")
            if row["delivery_status"] == "failed":
                return DeliveryOutcome(lead_id, "already_failed")
            if row["delivery_status"] == "in_progress" and row["leased"]:
                # Another worker is sending it; it records the result and what follows.
                return DeliveryOutcome(lead_id, "busy")
            due = row["next_attempt_at"]
            now = datetime.now(UTC)
            if due is not None and due > now + NOT_DUE_TOLERANCE:
                # An early job: keep the work alive by re-queueing it for when it is due
                # (a duplicate is harmless: the claim above admits one attempt at a time).
                await enqueue_raw(conn, DELIVER_LEAD, {"lead_id": str(lead_id)}, delay=due - now)
                return DeliveryOutcome(lead_id, "not_due")
            limit = self.runtime.settings.delivery_max_in_flight_per_buyer
            if limit and await repo.in_flight(conn, row["buyer_id"]) >= limit:
                # The buyer already has its share of worker slots (a slow buyer holds
                # them for its whole timeout): wait a turn instead of taking another.
                await enqueue_raw(
                    conn, DELIVER_LEAD, {"lead_id": str(lead_id)}, delay=THROTTLE_DELAY
                )
                return DeliveryOutcome(lead_id, "throttled")
            attempt_no = row["attempt_count"] + 1
            message = self._message(row)
            await repo.start_attempt(
                conn, row["delivery_id"], attempt_no, _lease(message), digest(message.body)
            )
        return row, message, attempt_no

    async def redeliver(self, lead_id: uuid.UUID) -> bool:
        """Re-open a failed delivery for a new round of attempts; False if not failed."""
        async with self.runtime.db.raw() as conn, conn.transaction():
            if not await repo.reopen_failed(conn, lead_id):
                return False
            await enqueue_raw(conn, DELIVER_LEAD, {"lead_id": str(lead_id)})
        log.info("delivery_reopened", lead_id=str(lead_id))
        return True

    async def _send(self, channel: str, message: Outbound) -> AttemptResult:
        if message.problem:
            return AttemptResult("permanent_error", error=message.problem)
        sender = self.channels.get(channel)
        if sender is None:
            return AttemptResult(
                "permanent_error", error=f"delivery_channel_unconfigured: {channel}"
            )
        try:
            return await sender.send(message)
        except Exception as exc:
            # A bug in a channel must not leave the started attempt open: record it as
            # a retryable error (the schedule bounds the retries) and say so loudly.
            log.exception("delivery_channel_crashed", lead_id=message.lead_id)
            return AttemptResult("retryable_error", error=f"internal: {type(exc).__name__}")

    def _message(self, row: dict) -> Outbound:
        secret, problem = None, None
        if row["webhook_secret"]:
            try:
                secret = decrypt_secret(
                    row["webhook_secret"], self.runtime.settings.secret_key.get_secret_value()
                )
            except ValueError:
                # Stored under another LEADFLOOD_SECRET_KEY: sending unsigned would mislead
                # the buyer, and no retry can fix it; the operator must re-enter it.
                problem = "webhook_secret_unreadable: re-enter the buyer's webhook secret"
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
            problem=problem,
        )

    async def _record(
        self, row: dict, attempt: repo.AttemptRecord, result: AttemptResult
    ) -> DeliveryOutcome:
        lead_id: uuid.UUID = row["lead_id"]
        attempt_no = attempt.attempt_no
        async with self.runtime.db.raw() as conn, conn.transaction():
            if result.outcome == "success":
                recorded = await repo.record_success(conn, attempt)
                outcome = "delivered"
            else:
                delay = (
                    next_delay(attempt_no - row["round_start"], result.retry_after, self.delays)
                    if result.outcome == "retryable_error"
                    else None
                )
                if delay is not None:
                    recorded = await repo.record_retry(conn, attempt, delay)
                    if recorded:
                        await enqueue_raw(
                            conn, DELIVER_LEAD, {"lead_id": str(lead_id)}, delay=delay
                        )
                    outcome = "retry_scheduled"
                else:
                    recorded = await repo.record_failure(conn, attempt)
                    outcome = "failed"
        if not recorded:
            # The lease ran out and another worker took the delivery over; it owns it now.
            log.warning("delivery_attempt_superseded", lead_id=str(lead_id), attempt=attempt_no)
            outcome = "superseded"
        log.info(
            "delivery_attempt",
            lead_id=str(lead_id),
            attempt=attempt_no,
            max_attempts=len(self.delays) + 1,
            outcome=result.outcome,
            result=outcome,
            http_status=result.http_status,
            error=result.error,
        )
        return DeliveryOutcome(lead_id, outcome, attempt_no, result)


THROTTLE_DELAY = timedelta(seconds=1)

# How long a claimed attempt may stay open before another worker may take it over: the
# buyer's own timeout plus a margin for recording the result.
_LEASE_MARGIN = timedelta(seconds=60)


def _lease(message: Outbound) -> timedelta:
    return timedelta(milliseconds=message.timeout_ms or 10_000) + _LEASE_MARGIN
