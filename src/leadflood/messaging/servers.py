"""A mailbox's own SMTP and IMAP servers, passwords decrypted only for the client that
uses them (never logged, never returned)."""

from __future__ import annotations

from leadflood.core.security import decrypt_secret
from leadflood.core.settings import Settings
from leadflood.integrations.imap.reader import ImapConfig
from leadflood.integrations.smtp.sender import SmtpConfig
from leadflood.messaging.repository import MailboxSecrets


def _password(token: str | None, settings: Settings) -> str | None:
    return decrypt_secret(token, settings.secret_key.get_secret_value()) if token else None


def smtp_for(secrets: MailboxSecrets, settings: Settings) -> SmtpConfig | None:
    """The mailbox's own SMTP server, or None to send through LEADFLOOD_SMTP_*."""
    if not secrets.smtp_host:
        return None
    return SmtpConfig(
        host=secrets.smtp_host,
        port=secrets.smtp_port or (465 if secrets.smtp_security == "tls" else 587),
        username=secrets.smtp_username,
        password=_password(secrets.smtp_password_enc, settings),
        starttls=secrets.smtp_security == "starttls",
        tls=secrets.smtp_security == "tls",
        timeout_s=settings.smtp_timeout_s,
    )


def imap_for(secrets: MailboxSecrets, settings: Settings) -> ImapConfig | None:
    if not secrets.imap_host or not secrets.imap_username or not secrets.imap_password_enc:
        return None
    password = _password(secrets.imap_password_enc, settings)
    assert password is not None
    return ImapConfig(
        host=secrets.imap_host,
        port=secrets.imap_port or (993 if secrets.imap_security == "tls" else 143),
        security=secrets.imap_security,
        username=secrets.imap_username,
        password=password,
        folder=secrets.imap_folder,
    )
