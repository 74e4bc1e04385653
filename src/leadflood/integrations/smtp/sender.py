"""Send one email over SMTP (smtplib in a thread), errors classified for retries.

SMTP 4xx replies and connection problems are transient; 5xx replies are permanent
(for a refused recipient that is a hard bounce).
"""

from __future__ import annotations

import asyncio
import smtplib
import ssl
from dataclasses import dataclass
from email.message import EmailMessage

from leadflood.core.providers import PermanentProviderError, TransientProviderError
from leadflood.core.settings import Settings

PROVIDER = "smtp"


@dataclass(frozen=True)
class SmtpConfig:
    host: str
    port: int
    username: str | None = None
    password: str | None = None
    starttls: bool = False
    timeout_s: float = 10.0
    tls: bool = False  # implicit TLS (port 465) instead of STARTTLS


def config_from(settings: Settings) -> SmtpConfig | None:
    """The server Lead Flood sends through (LEADFLOOD_SMTP_*), or None when unset."""
    if not settings.smtp_host:
        return None
    return SmtpConfig(
        host=settings.smtp_host,
        port=settings.smtp_port,
        username=settings.smtp_username,
        password=settings.smtp_password.get_secret_value() if settings.smtp_password else None,
        starttls=settings.smtp_starttls,
        timeout_s=settings.smtp_timeout_s,
    )


def _send(config: SmtpConfig, message: EmailMessage) -> None:
    context = ssl.create_default_context()
    opened = (
        smtplib.SMTP_SSL(config.host, config.port, timeout=config.timeout_s, context=context)
        if config.tls
        else smtplib.SMTP(config.host, config.port, timeout=config.timeout_s)
    )
    with opened as smtp:
        if config.starttls and not config.tls:
            smtp.starttls(context=context)
        if config.username and config.password:
            smtp.login(config.username, config.password)
        smtp.send_message(message)


async def send_email(config: SmtpConfig, message: EmailMessage) -> None:
    try:
        await asyncio.to_thread(_send, config, message)
    except smtplib.SMTPRecipientsRefused as exc:
        codes = [code for code, _ in exc.recipients.values()]
        detail = "; ".join(
            f"{r}: {c} {m.decode(errors='replace')}" for r, (c, m) in exc.recipients.items()
        )
        if all(code >= 500 for code in codes):
            raise PermanentProviderError(PROVIDER, "recipient_refused", detail) from None
        raise TransientProviderError(PROVIDER, "recipient_deferred", detail) from None
    except smtplib.SMTPResponseException as exc:
        error = exc.smtp_error
        reason = error.decode(errors="replace") if isinstance(error, bytes) else str(error)
        text = f"{exc.smtp_code} {reason}"
        if exc.smtp_code >= 500:
            raise PermanentProviderError(PROVIDER, "smtp_rejected", text) from None
        raise TransientProviderError(PROVIDER, "smtp_deferred", text) from None
    except (smtplib.SMTPException, OSError) as exc:
        raise TransientProviderError(
            PROVIDER, "smtp_unavailable", f"{type(exc).__name__}: {exc}"
        ) from None
