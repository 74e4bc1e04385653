"""alerts.send: tell the operator, by email and/or a Slack-compatible webhook, when
something needs a person (a buyer paused itself). A job, so nothing is sent inside the
transaction that found it; retried on the stage schedule when the channel is down."""

from __future__ import annotations

import uuid
from email.message import EmailMessage
from typing import Any

import aiohttp
import structlog

from leadflood.admin.repository import buyer_names
from leadflood.core.jobs import JobContext, job
from leadflood.core.providers import ProviderError
from leadflood.delivery.safety import DestinationError, vet
from leadflood.integrations.smtp.sender import config_from, send_email

log = structlog.get_logger("leadflood.alerts")

ALERT_JOB = "alerts.send"


def text_of(payload: dict[str, Any]) -> str:
    if payload.get("kind") == "buyer_paused":
        return (
            f"Lead Flood: buyer {payload.get('buyer_name') or payload.get('buyer_id')} paused "
            f"itself: {payload.get('reason')}. Its leads go to other buyers until it is resumed."
        )
    if payload.get("kind") == "buyer_resumed":
        name = payload.get("buyer_name") or payload.get("buyer_id")
        return f"Lead Flood: buyer {name} answered its health check and was resumed."
    return f"Lead Flood alert: {payload}"


@job(ALERT_JOB)
async def send_alert(ctx: JobContext) -> None:
    settings = ctx.runtime.settings
    payload = dict(ctx.payload)
    if payload.get("buyer_id"):
        async with ctx.unit_of_work() as tx:
            names = await buyer_names(tx, [uuid.UUID(payload["buyer_id"])])
        payload["buyer_name"] = next(iter(names.values()), None)
    text = text_of(payload)
    if settings.alert_webhook_url:
        try:
            target = await vet(
                settings.alert_webhook_url, allow_private=settings.private_networks_allowed
            )
        except DestinationError as exc:
            log.error("alert_webhook_refused", error=str(exc))
        else:
            timeout = aiohttp.ClientTimeout(total=10)
            async with ctx.runtime.webhook_session().post(
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
