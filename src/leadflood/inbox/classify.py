"""Read an inbound email and say what it is: a reply, an auto-reply or a bounce.

Bounces are delivery status notifications (RFC 3464: multipart/report;
report-type=delivery-status) whose recipients have `Action: failed`. Auto-replies
carry `Auto-Submitted` (other than "no"), `X-Autoreply`/`X-Autorespond`, or
`Precedence: auto_reply`. Neither is ever counted as a reply.
"""

from __future__ import annotations

import email
import email.policy
import re
from dataclasses import dataclass, field
from email.message import EmailMessage, Message
from email.utils import getaddresses, parseaddr

_MSGID = re.compile(r"<[^<>\s]+>")


@dataclass(frozen=True)
class InboundEmail:
    kind: str  # reply | auto_reply | bounce
    from_address: str
    to_addresses: list[str]
    subject: str
    body: str
    message_id: str | None
    in_reply_to: list[str] = field(default_factory=list)  # In-Reply-To first, then References
    bounced: list[str] = field(default_factory=list)
    original_message_id: str | None = None


def _ids(value: str | None) -> list[str]:
    return _MSGID.findall(value or "")


def _text(message: Message) -> str:
    if isinstance(message, EmailMessage):
        part = message.get_body(preferencelist=("plain", "html"))
        if part is not None:
            try:
                return part.get_content().strip()
            except (LookupError, KeyError):
                payload = part.get_payload(decode=True) or b""
                return payload.decode(errors="replace").strip()
    return ""


def _strip_quoted(body: str) -> str:
    """The new text of a reply, without the quoted thread below it."""
    lines = []
    for line in body.splitlines():
        if line.startswith(">") or re.match(r"^On .+ wrote:$", line.strip()):
            break
        lines.append(line)
    return "\n".join(lines).strip() or body.strip()


def _is_auto_reply(message: Message) -> bool:
    auto = (message.get("Auto-Submitted") or "").strip().lower()
    if auto and auto != "no":
        return True
    if message.get("X-Autoreply") or message.get("X-Autorespond"):
        return True
    return (message.get("Precedence") or "").strip().lower() == "auto_reply"


def _bounce(message: Message) -> tuple[list[str], str | None] | None:
    if message.get_content_type() != "multipart/report":
        return None
    if (message.get_param("report-type") or "").lower() != "delivery-status":
        return None
    failed: list[str] = []
    original = None
    for part in message.walk():
        kind = part.get_content_type()
        if kind == "message/delivery-status":
            # Each sub-part is a header block: the per-message one, then one per recipient.
            blocks = part.get_payload() if part.is_multipart() else []
            for block in blocks:
                action = (block.get("Action") or "").strip().lower()
                recipient = block.get("Final-Recipient") or block.get("Original-Recipient") or ""
                if action == "failed" and ";" in recipient:
                    failed.append(recipient.split(";", 1)[1].strip().lower())
        elif kind in ("message/rfc822", "text/rfc822-headers") and original is None:
            inner = (
                part.get_payload(0)
                if part.is_multipart()
                else email.message_from_string(
                    part.get_payload(decode=True).decode(errors="replace")
                )
            )
            found = _ids(inner.get("Message-ID"))
            original = found[0] if found else None
    return failed, original


def parse(raw: bytes) -> InboundEmail:
    message = email.message_from_bytes(raw, policy=email.policy.default)
    sender = parseaddr(str(message.get("From") or ""))[1].lower()
    recipients = [a.lower() for _, a in getaddresses([str(message.get("To") or "")]) if a]
    threading = _ids(str(message.get("In-Reply-To") or "")) + [
        i
        for i in _ids(str(message.get("References") or ""))
        if i not in _ids(str(message.get("In-Reply-To") or ""))
    ]
    own_id = _ids(str(message.get("Message-ID") or ""))
    subject = str(message.get("Subject") or "")
    bounce = _bounce(message)
    if bounce is not None:
        failed, original = bounce
        kind = "bounce" if failed else "auto_reply"  # a delay notice is not a bounce
        return InboundEmail(
            kind,
            sender,
            recipients,
            subject,
            _text(message)[:5000],
            own_id[0] if own_id else None,
            threading,
            failed,
            original,
        )
    kind = "auto_reply" if _is_auto_reply(message) else "reply"
    body = _text(message)
    return InboundEmail(
        kind,
        sender,
        recipients,
        subject,
        _strip_quoted(body) if kind == "reply" else body,
        own_id[0] if own_id else None,
        threading,
    )
