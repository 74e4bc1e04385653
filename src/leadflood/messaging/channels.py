"""The channels a message goes out on: one `MessageChannel` per provider, keyed by channel.

A channel only talks to its provider (no database): the send job prepares an `Outgoing`
in one unit of work, calls `send` with nothing held, and records the result in another.
Failures are provider errors (core/providers): transient ones are retried by the job.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from email.message import EmailMessage
from email.utils import format_datetime, formataddr, make_msgid
from enum import StrEnum
from typing import Any, Protocol

from leadflood.core.providers import PermanentProviderError
from leadflood.core.settings import Settings
from leadflood.delivery.safety import DestinationError, vet_host
from leadflood.integrations.smtp.sender import SmtpConfig, send_email
from leadflood.integrations.smtp.sender import config_from as smtp_config_from
from leadflood.integrations.trengo.client import TrengoClient
from leadflood.messaging.repository import Mailbox, Message
from leadflood.prospecting.repository import Prospect


class Channel(StrEnum):
    email = "email"
    whatsapp = "whatsapp"
    sms = "sms"


@dataclass(frozen=True, slots=True)
class Outgoing:
    """Everything a channel needs to send one message, read in the preparing unit."""

    message: Message
    lead: Prospect
    mailbox: Mailbox | None
    subject: str
    body: str
    unsubscribe_url: str
    started: datetime
    # The mailbox day whose send unit was taken (email only): given back if the send fails.
    unit_day: Any = None
    # The mailbox's own SMTP server (else LEADFLOOD_SMTP_*).
    smtp: SmtpConfig | None = None
    # WhatsApp outside the 24-hour window: (Trengo template id, rendered parameters).
    whatsapp_template: tuple[int, list[str]] | None = None
    # WhatsApp/SMS: the lead's number in E.164.
    phone: str | None = None


class MessageChannel(Protocol):
    async def send(self, outgoing: Outgoing) -> dict[str, Any]:
        """Send; return the message columns to record (addresses, provider ids)."""
        ...


class EmailChannel:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    async def send(self, outgoing: Outgoing) -> dict[str, Any]:
        config = outgoing.smtp or smtp_config_from(self.settings)
        if config is None:
            raise PermanentProviderError(
                "smtp", "provider_not_configured", "set LEADFLOOD_SMTP_HOST or the mailbox's SMTP"
            )
        if outgoing.smtp is not None:
            try:
                await vet_host(
                    config.host, config.port, allow_private=self.settings.private_networks_allowed
                )
            except DestinationError as exc:
                raise PermanentProviderError("smtp", exc.code, str(exc)) from None
        mailbox = outgoing.mailbox
        assert mailbox is not None  # checked when the send was prepared
        header = make_msgid(domain=mailbox.from_email.split("@")[-1])
        await send_email(config, compose(outgoing, header))
        return {
            "message_id_header": header,
            "from_address": mailbox.from_email,
            "to_address": outgoing.lead.email,
        }


def compose(outgoing: Outgoing, header: str) -> EmailMessage:
    """The email. A header value with CR/LF (a subject rendered from a lead's company
    name, say) is refused by email.policy.default: nothing can be injected, and the send
    fails for good instead of retrying."""
    mailbox, lead, message = outgoing.mailbox, outgoing.lead, outgoing.message
    assert mailbox is not None  # checked when the send was prepared
    email = EmailMessage()
    try:
        email["From"] = formataddr((mailbox.from_name or "", mailbox.from_email))
        email["To"] = lead.email
        email["Subject"] = outgoing.subject
        email["Message-ID"] = header
        email["Date"] = format_datetime(outgoing.started)
        if message.in_reply_to:
            email["In-Reply-To"] = message.in_reply_to
            email["References"] = message.in_reply_to
        email["List-Unsubscribe"] = f"<{outgoing.unsubscribe_url}>"
    except ValueError as exc:
        raise PermanentProviderError("smtp", "invalid_header", str(exc)) from None
    email["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    email.set_content(f"{outgoing.body}\n\n--\nUnsubscribe: {outgoing.unsubscribe_url}\n")
    return email


class TrengoChannel:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    async def send(self, outgoing: Outgoing) -> dict[str, Any]:
        s = self.settings
        if s.trengo_api_key is None or s.trengo_channel_id is None:
            raise PermanentProviderError(
                "trengo", "provider_not_configured", "set LEADFLOOD_TRENGO_API_KEY and _CHANNEL_ID"
            )
        phone = outgoing.phone or outgoing.lead.phone
        if not phone:
            raise PermanentProviderError("trengo", "no_phone", "the lead has no phone number")
        client = TrengoClient(
            s.trengo_api_key.get_secret_value(), s.trengo_base_url, s.provider_timeout_s
        )
        try:
            if outgoing.whatsapp_template is not None:
                template_id, params = outgoing.whatsapp_template
                response = await client.start_whatsapp(
                    to=phone, template_id=template_id, params=params
                )
            else:
                sms_channel = s.trengo_sms_channel_id
                sms = outgoing.message.channel == Channel.sms and sms_channel is not None
                response = await client.send_message(
                    channel_id=sms_channel if sms and sms_channel else s.trengo_channel_id,
                    to=phone,
                    body=outgoing.body,
                )
        finally:
            await client.close()
        data = response.get("data") or response if isinstance(response, dict) else {}
        provider_id = data.get("id") if isinstance(data, dict) else None
        return {
            "provider_message_id": str(provider_id) if provider_id else None,
            "to_address": phone,
        }


CHANNELS: dict[Channel, type[EmailChannel] | type[TrengoChannel]] = {
    Channel.email: EmailChannel,
    Channel.whatsapp: TrengoChannel,
    Channel.sms: TrengoChannel,
}


def channel_for(name: str, settings: Settings) -> MessageChannel:
    return CHANNELS[Channel(name)](settings)
