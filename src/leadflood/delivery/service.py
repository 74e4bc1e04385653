"""Deliver one routed lead: one attempt per job, recorded, retried on schedule (§7).

`DeliveryService` runs one attempt as three steps on units of work that its boundary (the
deliver_lead job, delivery/tasks.py) opens: claim, send with nothing held, record.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import structlog

from leadflood.core.jobs import DELIVER_LEAD
from leadflood.core.retry import RetryPolicy
from leadflood.core.runtime import Runtime
from leadflood.core.security import decrypt_secret
from leadflood.core.status import DeliveryStatus
from leadflood.core.uow import Tx
from leadflood.delivery import repository as repo
from leadflood.delivery.channels import (
    AttemptResult,
    DeliveryChannel,
    Outbound,
    build_channels,
    integrated,
)
from leadflood.delivery.integration import ConfigError, build_request, integration_of, rules_of
from leadflood.delivery.payload import (
    base_headers,
    build_payload,
    digest,
    headers,
    serialize,
    template_context,
)
from leadflood.delivery.policy import NOT_DUE_TOLERANCE
from leadflood.delivery.repository import ClaimedAttempt
from leadflood.health.metrics import DELIVERY_ATTEMPTS, STAGE_TRANSITIONS

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
        self.retry = RetryPolicy.from_seconds(runtime.settings.delivery_retry_schedule_s)

    async def send(
        self, row: ClaimedAttempt, message: Outbound
    ) -> tuple[repo.AttemptRecord, AttemptResult]:
        """The attempt itself, with no transaction or connection held."""
        clock = time.perf_counter()
        result = await self._send(row.channel, message)
        attempt = repo.AttemptRecord(
            delivery_id=row.delivery_id,
            attempt_no=row.attempt_no,
            duration_ms=round((time.perf_counter() - clock) * 1000, 3),
            http_status=result.http_status,
            response_excerpt=result.response_excerpt,
            outcome=result.outcome,
            error=result.error,
            request_digest=digest(message.body),
        )
        return attempt, result

    async def claim(
        self, conn: Tx, lead_id: uuid.UUID
    ) -> DeliveryOutcome | tuple[ClaimedAttempt, Outbound]:
        """One autocommit statement takes the attempt (or says why not, re-queueing the
        job when the work is still to do)."""
        limit = self.runtime.settings.delivery_max_in_flight_per_buyer
        row = await repo.claim(conn, lead_id, limit, NOT_DUE_TOLERANCE)
        if row is not None:
            return row, self.build_message(row)
        state = await repo.claim_state(conn, lead_id, limit)
        if state is None:
            return DeliveryOutcome(lead_id, "not_found")
        if state.status == DeliveryStatus.succeeded:
            return DeliveryOutcome(lead_id, "already_delivered")
        if state.status == DeliveryStatus.failed:
            return DeliveryOutcome(lead_id, "already_failed")
        if state.lease_left is not None:
            # Another worker is sending it and records what follows. Should it die
            # mid-send, this job comes back when its lease ends and takes over.
            await conn.enqueue(
                DELIVER_LEAD,
                {"lead_id": str(lead_id)},
                delay=state.lease_left + THROTTLE_DELAY,
            )
            return DeliveryOutcome(lead_id, "busy")
        if state.due_in > NOT_DUE_TOLERANCE:
            # An early job: keep the work alive by re-queueing it for when it is due
            # (a duplicate is harmless: the claim admits one attempt at a time).
            await conn.enqueue(DELIVER_LEAD, {"lead_id": str(lead_id)}, delay=state.due_in)
            return DeliveryOutcome(lead_id, "not_due")
        # Due but not claimed: the buyer has its share of worker slots (a slow buyer
        # holds them for its whole timeout), or another claim held the row for an
        # instant. Either way wait a turn in the queue, not in a worker slot; the
        # state read above may already be newer than what the claim saw, so never
        # drop the job on it (a duplicate is harmless, a lost job strands the lead).
        await conn.enqueue(DELIVER_LEAD, {"lead_id": str(lead_id)}, delay=THROTTLE_DELAY)
        return DeliveryOutcome(lead_id, "throttled" if state.throttled else "busy")

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

    def build_message(self, row: ClaimedAttempt) -> Outbound:
        """What the attempt sends (also the buyer test's dry run)."""
        secret, problem = None, None
        if row.webhook_secret:
            try:
                secret = decrypt_secret(
                    row.webhook_secret, self.runtime.settings.secret_key.get_secret_value()
                )
            except ValueError:
                # Stored under another LEADFLOOD_SECRET_KEY: sending unsigned would mislead
                # the buyer, and no retry can fix it; the operator must re-enter it.
                problem = "webhook_secret_unreadable: re-enter the buyer's webhook secret"
        lead_id = str(row.lead_id)
        common: dict[str, Any] = {
            "lead_id": lead_id,
            "webhook_url": row.webhook_url,
            "email": row.buyer_email,
            "secret": secret,
            "timeout_ms": row.delivery_timeout_ms,
            "subject": f"New lead: {row.offer_name} — {row.market_name}",
            "problem": problem,
        }
        payload = build_payload(row)
        if row.channel == "webhook" and (row.integration or row.response_rules):
            return self._integrated(row, payload, common)
        return _canonical(payload, common)  # the signed canonical JSON, any 2xx accepted

    def _integrated(
        self, row: ClaimedAttempt, payload: dict[str, Any], common: dict[str, Any]
    ) -> Outbound:
        """The buyer's own request and response rules (decision 0020); a configuration
        that cannot build this lead's request fails it for good, with the reason (the
        canonical body stands in for the request that could not be built)."""
        key = self.runtime.settings.secret_key.get_secret_value()
        try:
            rules = rules_of(row.response_rules) if row.response_rules else None
            config = integration_of(row.integration) if row.integration else None
        except ValueError as exc:
            return _canonical(payload, common, problem=f"integration_config: {exc}"[:500])
        if config is None:
            return _canonical(payload, common, rules=rules)
        credential = None
        if row.integration_secret:
            try:
                credential = decrypt_secret(row.integration_secret, key)
            except ValueError:
                return _canonical(
                    payload,
                    common,
                    rules=rules,
                    problem="integration_secret_unreadable: re-enter the buyer's credential",
                )
        try:
            request = build_request(
                config,
                template_context(row, payload),
                secret=credential,
                base_headers=base_headers(common["lead_id"]),
            )
        except ConfigError as exc:
            return _canonical(
                payload, common, rules=rules, problem=f"integration_config: {exc}"[:500]
            )
        fields = {k: v for k, v in common.items() if k not in ("webhook_url", "secret")}
        return integrated(
            request,
            sign=config.sign,
            secret=common["secret"],
            rules=rules,
            credential=credential,
            **fields,
        )

    async def record(
        self, conn: Tx, row: ClaimedAttempt, attempt: repo.AttemptRecord, result: AttemptResult
    ) -> DeliveryOutcome:
        """One autocommit statement, guarded by the claim (status and attempt number)."""
        lead_id: uuid.UUID = row.lead_id
        attempt_no = attempt.attempt_no
        if result.outcome == "success":
            recorded = await repo.record_success(
                conn, attempt, result.reference, result.price_cents
            )
            outcome = "delivered"
        elif result.outcome == "rejected":
            # The buyer refused this lead: not billed, not offered to it again; the next
            # buyer gets it (the waterfall), or it ends unsold.
            recorded, lead_status = await repo.record_rejection(conn, attempt, result.reason)
            outcome = "rejected_unsold" if lead_status == "unsold" else "rejected"
        else:
            delay = (
                self.retry.delay_after(attempt_no - row.round_start, result.retry_after)
                if result.outcome == "retryable_error"
                else None
            )
            if delay is not None:
                recorded = await repo.record_retry(conn, attempt, delay)
                outcome = "retry_scheduled"
            else:
                recorded = await repo.record_failure(conn, attempt)
                outcome = "failed"
        if not recorded:
            # The lease ran out and another worker took the delivery over; it owns it now.
            log.warning("delivery_attempt_superseded", lead_id=str(lead_id), attempt=attempt_no)
            outcome = "superseded"
        else:
            await self._health(conn, row, result)
            DELIVERY_ATTEMPTS.labels(result.outcome, str(row.buyer_id)).inc()
            if outcome in ("delivered", "failed"):
                STAGE_TRANSITIONS.labels(outcome).inc()
        log.info(
            "delivery_attempt",
            lead_id=str(lead_id),
            attempt=attempt_no,
            max_attempts=self.retry.max_attempts,
            outcome=result.outcome,
            result=outcome,
            http_status=result.http_status,
            error=result.error,
        )
        return DeliveryOutcome(lead_id, outcome, attempt_no, result)

    async def _health(self, conn: Tx, row: ClaimedAttempt, result: AttemptResult) -> None:
        """A buyer failing attempt after attempt pauses itself (routing then sends its
        leads to others); any answer ends the streak. Only failures write on the hot path
        (a success writes only to end a streak)."""
        if result.outcome in ("success", "rejected"):
            if row.consecutive_failures:
                await repo.buyer_answered(conn, row.buyer_id)
            return
        reason = f"failing (in a row, or its error rate); last: {result.error or result.outcome}"
        if await repo.buyer_failed(conn, row.buyer_id, reason):
            log.warning("buyer_paused", buyer_id=str(row.buyer_id), reason=reason)
            await conn.audit(None, "pause", "buyer", row.buyer_id, {"reason": reason})
            # The operator is told (email and/or webhook), by a job: nothing sent here.
            await conn.enqueue(
                "alerts.send",
                {"kind": "buyer_paused", "buyer_id": str(row.buyer_id), "reason": reason},
            )


THROTTLE_DELAY = timedelta(seconds=1)


def _canonical(payload: dict[str, Any], common: dict[str, Any], **extra: Any) -> Outbound:
    """The signed canonical JSON of the lead (serialized only when it is what is sent)."""
    fields = {**common, **extra}
    body = serialize(payload)
    return Outbound(**fields, body=body, headers=headers(fields["lead_id"], body, fields["secret"]))


async def redeliver(tx: Tx, lead_id: uuid.UUID) -> bool:
    """Re-open a failed delivery for a new round of attempts; False if not failed."""
    if not await repo.reopen_failed(tx, lead_id):
        return False
    await tx.enqueue(DELIVER_LEAD, {"lead_id": str(lead_id)})
    log.info("delivery_reopened", lead_id=str(lead_id))
    return True
