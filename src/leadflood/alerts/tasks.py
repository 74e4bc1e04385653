"""alerts.send: tell the operator, by email and/or a Slack-compatible webhook, when
something needs a person (a buyer paused itself). A job, so nothing is sent inside the
transaction that found it; retried on the stage schedule when the channel is down."""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from email.message import EmailMessage
from typing import Any

import aiohttp
import structlog

from leadflood.admin.repository import buyer_names
from leadflood.alerts import repository as repo
from leadflood.alerts import service
from leadflood.core.jobs import JobContext, job
from leadflood.core.providers import ProviderError
from leadflood.core.retry import NO_RETRY
from leadflood.core.runtime import Runtime
from leadflood.core.uow import unit_of_work
from leadflood.delivery.safety import DestinationError, vet
from leadflood.integrations.smtp.sender import config_from, send_email

log = structlog.get_logger("leadflood.alerts")

ALERT_JOB = service.ALERT_JOB
EVALUATE_JOB = "alerts.evaluate"
HEARTBEAT_JOB = "system.heartbeat"


def text_of(payload: dict[str, Any]) -> str:
    if payload.get("kind") == "buyer_paused":
        return (
            f"Lead Flood: buyer {payload.get('buyer_name') or payload.get('buyer_id')} paused "
            f"itself: {payload.get('reason')}. Its leads go to other buyers until it is resumed."
        )
    if payload.get("kind") == "buyer_resumed":
        name = payload.get("buyer_name") or payload.get("buyer_id")
        return f"Lead Flood: buyer {name} answered its health check and was resumed."
    if payload.get("kind") == "alert":
        return f"Lead Flood alert: {payload.get('text')}"
    return f"Lead Flood alert: {payload}"


@job(ALERT_JOB)
async def send_alert(ctx: JobContext) -> None:
    payload = dict(ctx.payload)
    if payload.get("buyer_id"):
        async with ctx.unit_of_work() as tx:
            names = await buyer_names(tx, [uuid.UUID(payload["buyer_id"])])
        payload["buyer_name"] = next(iter(names.values()), None)
    await notify(ctx.runtime, text_of(payload))


async def notify(runtime: Runtime, text: str) -> None:
    """Send one alert text to the configured channels (the webhook, then the email);
    raises when a channel is down, so a job retries it."""
    settings = runtime.settings
    if settings.alert_webhook_url:
        try:
            target = await vet(
                settings.alert_webhook_url, allow_private=settings.private_networks_allowed
            )
        except DestinationError as exc:
            log.error("alert_webhook_refused", error=str(exc))
        else:
            timeout = aiohttp.ClientTimeout(total=10)
            async with runtime.webhook_session().post(
                target.url, json={"text": text}, timeout=timeout, allow_redirects=False
            ) as response:
                if response.status >= 500 or response.status == 429:
                    raise RuntimeError(f"alert webhook answered {response.status}")
    smtp = config_from(settings)
    if settings.alert_email and smtp is not None:
        mail = EmailMessage()
        mail["From"] = settings.smtp_from
        mail["To"] = settings.alert_email
        mail["Subject"] = text[:150].replace("\n", " ")
        mail.set_content(text)
        try:
            await send_email(smtp, mail)
        except ProviderError as exc:
            raise RuntimeError(f"alert email: {exc}") from None
    log.warning("operator_alert", text=text)


@job(EVALUATE_JOB, retry=NO_RETRY)
async def evaluate_alerts(ctx: JobContext) -> None:
    """Periodic: every rule once (the next run retries; nothing to retry here)."""
    async with ctx.unit_of_work() as tx:
        result = await service.evaluate(tx, ctx.runtime.settings)
    if result.opened or result.resolved:
        log.info("alerts_evaluated", opened=len(result.opened), resolved=result.resolved)


@job(HEARTBEAT_JOB, retry=NO_RETRY)
async def heartbeat(ctx: JobContext) -> None:
    """Periodic: a worker is alive and taking jobs from the queue."""
    async with ctx.statements() as tx:
        await repo.beat(tx)


async def check_heartbeat(runtime: Runtime, up_s: float) -> bool:
    """One look at the workers' heartbeat from the serve process: opens (and sends, here:
    no worker would send it) or clears the alert. True when it was opened now."""
    async with unit_of_work(runtime.db) as tx:
        finding = await service.heartbeat_finding(tx, runtime.settings, up_s)
        opened = await service.raise_heartbeat(tx, finding)
    if opened and finding is not None:
        try:
            await notify(runtime, f"Lead Flood alert: {finding.title}: {finding.detail}")
        except Exception:
            log.exception("heartbeat_alert_not_sent")
    return opened


async def watch_heartbeat(runtime: Runtime, stop: asyncio.Event, every_s: float = 60.0) -> None:
    """The serve process's watch over the workers, until `stop`."""
    started = time.monotonic()
    while not stop.is_set():
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=every_s)
        if stop.is_set():
            return
        try:
            await check_heartbeat(runtime, time.monotonic() - started)
        except Exception:
            log.exception("heartbeat_check_failed")
