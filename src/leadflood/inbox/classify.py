"""Read an inbound email and say what it is.

Kinds: `reply` (a person wrote back), `opt_out` (a person asked to be removed),
`auto_reply` (out-of-office, inbox rules, read receipts, challenge-response, bulk mail),
`bounce` (hard or soft), `delivered` (a DSN saying it arrived) and `delayed` (a DSN saying
the server keeps trying). Only `reply` and `opt_out` are a person's words.

Bounce detection is flufl.bounce's (Mailman's detectors: RFC 3464 DSNs, qmail, Exim,
Postfix, Exchange, Yahoo, AOL and others); whether a bounce is hard or soft is read here
from the status codes and the diagnostic text, since a full mailbox or a policy block is
not a reason to stop writing to an address for good. The quoted history below a reply is
stripped by mail-parser-reply (multilingual); the whole text is kept beside it.
"""

from __future__ import annotations

import email
import email.policy
import logging
import re
from dataclasses import dataclass, field
from email.message import EmailMessage, Message
from email.parser import BytesHeaderParser
from email.utils import collapse_rfc2231_value, getaddresses, parseaddr
from html.parser import HTMLParser
from typing import Any

import structlog
from flufl.bounce import all_failures
from mailparser_reply import EmailReplyParser

log = structlog.get_logger("leadflood.inbox")
# flufl.bounce logs each detector's exception with its traceback before re-raising it;
# we catch it (below) and log one line instead.
logging.getLogger("flufl.bounce").setLevel(logging.CRITICAL)

_MSGID = re.compile(r"<[^<>\s]+>")
MAX_TEXT = 100_000  # characters of a body read; the rest of a huge mail is not a reply
_REPLY_LANGUAGES = ["en", "de", "fr", "es", "it", "nl", "pl", "sv", "da", "cs"]


@dataclass(frozen=True)
class InboundEmail:
    kind: str  # reply | opt_out | auto_reply | bounce | delivered | delayed
    from_address: str
    to_addresses: list[str]
    subject: str
    body: str  # a reply's own words; otherwise the text
    message_id: str | None
    in_reply_to: list[str] = field(default_factory=list)  # In-Reply-To first, then References
    bounced: list[str] = field(default_factory=list)  # or delivered/delayed recipients
    original_message_id: str | None = None
    bounce_type: str | None = None  # hard | soft
    reason: str = ""  # why it was read this way (shown in the inbox)
    full_body: str = ""


def _ids(value: str | None) -> list[str]:
    return _MSGID.findall(value or "")


def _header(message: Message, name: str) -> str:
    try:
        return str(message.get(name) or "").replace("\x00", "").strip()
    except (ValueError, TypeError, IndexError, AttributeError):  # a header it cannot parse
        return ""


def _text(message: Message) -> str:
    if isinstance(message, EmailMessage):
        try:
            part = message.get_body(preferencelist=("plain", "html"))
        except (KeyError, ValueError, IndexError):
            part = None
        if part is not None:
            try:
                text = part.get_content()
            except (LookupError, KeyError, ValueError, AssertionError):
                payload = part.get_payload(decode=True)
                text = payload.decode(errors="replace") if isinstance(payload, bytes) else ""
            if part.get_content_type() == "text/html":
                text = _html_text(text)
            return str(text).strip()
    if not message.is_multipart():
        payload = message.get_payload(decode=True) or b""
        return payload.decode(errors="replace").strip() if isinstance(payload, bytes) else ""
    return ""


class _TextOf(HTMLParser):
    """The visible text of an HTML body (scripts and styles dropped, blocks on new lines)."""

    _BLOCKS = frozenset({"p", "div", "br", "li", "tr", "blockquote", "h1", "h2", "h3"})

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag: str, attrs: list) -> None:
        if tag in ("script", "style", "head"):
            self._skip += 1
        elif tag in self._BLOCKS:
            self.parts.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in ("script", "style", "head") and self._skip:
            self._skip -= 1

    def handle_data(self, data: str) -> None:
        if not self._skip:
            self.parts.append(data)


def _html_text(html: str) -> str:
    parser = _TextOf()
    try:
        parser.feed(html)
        parser.close()
    except (AssertionError, ValueError):  # unreadable HTML is read as what was read so far
        pass
    return re.sub(r"\n\s*\n+", "\n\n", "".join(parser.parts)).strip()


def _own_words(body: str) -> str:
    """The new text of a reply, without the quoted thread below it."""
    try:
        parsed = EmailReplyParser(languages=_REPLY_LANGUAGES).parse_reply(text=body)
    except Exception:  # a parser failure keeps the whole text
        parsed = None
    return _without_quote((parsed or "").strip() or body.strip())


def _without_quote(text: str) -> str:
    """Cut a quoted tail the parser did not know (its attribution line in a language it
    lacks): the trailing lines that are all quoted with ">", and the line introducing them."""
    lines = text.splitlines()
    start = len(lines)
    while start > 0 and (lines[start - 1].startswith(">") or not lines[start - 1].strip()):
        start -= 1
    if not any(line.startswith(">") for line in lines[start:]):
        return text
    head = lines[:start]
    if head and head[-1].rstrip().endswith(":"):
        head.pop()  # "On ... wrote:" in any language
    return "\n".join(head).strip() or text


# ---- automatic mail ----------------------------------------------------------------------

_AUTO_SUBJECT = re.compile(
    r"^\s*("
    r"auto(matic|matische|matisch)?[ -]?(reply|response|antwort|answer|svar)"
    r"|automatic reply|autoreply|auto-reply|out of (the )?office|ooo\b"
    r"|abwesenheit|abwesenheitsnotiz|automatische antwort|außer haus|ausser haus"
    r"|r[ée]ponse automatique|absence|absent\b"
    r"|respuesta autom[áa]tica|fuera de la oficina"
    r"|risposta automatica|fuori sede|assente"
    r"|automatisch antwoord|afwezig"
    r"|autosvar|automatiskt svar|fraværende|frånvarande"
    r"|automatyczna odpowied[źz]|nieobecno[śs][ćc]"
    r"|read:|gelesen:|lu :|lu:|le[íi]do:|letto:|gelezen:"
    r"|delivered:|undeliverable:|not read:|nicht gelesen:"
    r")",
    re.IGNORECASE,
)
# Challenge-response systems (Boxbe, SpamArrest, Mailblocks and home-made ones) ask the
# sender to prove they are a person; the challenge is no reply of the lead's.
_CHALLENGE = re.compile(
    r"(please (confirm|verify) (your|that you)|verify your (e-?mail|identity|message)"
    r"|sender verification|confirm (your|that you are a) (message|human|sender)"
    r"|awaiting (your )?(confirmation|verification)|approve your (e-?mail|message)"
    r"|i('| a)m protected by|spam ?arrest|boxbe|challenge[- ]response)",
    re.IGNORECASE,
)
_NO_REPLY_SENDER = re.compile(
    r"^(no-?reply|do-?not-?reply|mailer-daemon|postmaster|bounces?|auto-?reply|autoresponder)"
    r"([+.-].*)?@",
    re.IGNORECASE,
)


def _automatic(message: Message, sender: str, subject: str) -> str | None:
    """Why the message was written by a machine, or None for a person."""
    auto = _header(message, "Auto-Submitted").lower()
    if auto and not auto.startswith("no"):
        return f"Auto-Submitted: {auto}"
    for name in ("X-Autoreply", "X-Autorespond", "X-Autoresponder", "X-Auto-Reply"):
        if _header(message, name):
            return name
    if _header(message, "X-MS-Exchange-Inbox-Rules-Loop"):
        return "Exchange inbox rule"
    if _header(message, "X-MS-Exchange-Generated-Message-Source"):
        return "Exchange generated"
    precedence = _header(message, "Precedence").lower()
    if precedence in ("bulk", "junk", "list", "auto_reply"):
        return f"Precedence: {precedence}"
    if _header(message, "X-Auto-Response-Suppress").lower() in ("all", "oof") and re.search(
        r"(out of office|automatic|auto)", subject, re.IGNORECASE
    ):
        return "Outlook auto-reply"
    if _header(message, "List-Id") or _header(message, "List-Unsubscribe"):
        return "mailing list"
    if _header(message, "Return-Path") == "<>":
        return "null return path"
    if message.get_content_type() == "multipart/report":
        return f"report: {message.get_param('report-type') or 'unknown'}"
    if any(p.get_content_type() == "message/disposition-notification" for p in message.walk()):
        return "read receipt"
    if _header(message, "Disposition-Notification-To") and subject.lower().startswith("read:"):
        return "read receipt"
    if _NO_REPLY_SENDER.match(sender):
        return "automatic sender"
    if _AUTO_SUBJECT.match(subject):
        return "automatic subject"
    if _header(message, "X-Boxbe-Screen") or _CHALLENGE.search(subject):
        return "challenge-response"
    return None


# ---- opt-out replies ---------------------------------------------------------------------

_OPT_OUT = re.compile(
    r"\b("
    r"unsubscribe|remove me|take me off|opt[ -]?out|stop (emailing|e-?mailing|contacting|"
    r"writing|sending)|do not (contact|email|e-?mail|write)|don'?t (contact|email|e-?mail|write)"
    r"|no more (emails|e-?mails|messages)|not interested,? (please )?remove"
    r"|abmelden|austragen|entfernen sie mich|keine (weiteren )?(e-?mails|nachrichten)"
    r"|nicht mehr (kontaktieren|anschreiben|schreiben)"
    r"|d[ée]sabonner|d[ée]sinscri|retirez[- ]moi|ne plus (me )?(contacter|[ée]crire)"
    r"|darme de baja|darse de baja|dar de baja|no me (contacte|escriba)|eliminar(me)? de"
    r"|cancellami|cancellatemi|disiscrivi|non (mi )?(contattate|scrivete)|rimuovimi"
    r"|afmelden|uitschrijven|verwijder mij|niet meer (contacteren|mailen)"
    r"|avregistrera|avsluta prenumeration|ta bort mig|kontakta mig inte"
    r"|wypisz mnie|usu[ńn] mnie|nie kontaktuj"
    r"|descadastr|remover meu|n[ãa]o (me )?(contate|envie)"
    r")\b",
    re.IGNORECASE,
)


def _opts_out(text: str) -> bool:
    return bool(_OPT_OUT.search(text[:2000]))


# ---- bounces -----------------------------------------------------------------------------

_ENHANCED = re.compile(r"\b([245])\.(\d{1,3})\.(\d{1,3})\b")
_BASIC = re.compile(r"(?<![\d.])([45])\d\d(?![\d.])")
_SOFT_TEXT = re.compile(
    r"(mailbox (is )?full|over ?quota|quota exceeded|exceeded (the |their )?(storage|quota)"
    r"|insufficient (system )?storage|temporar(y|ily)|try again later|greylist"
    r"|retry time(out)? (was )?exceeded|could not be delivered (with)?in \d+"
    r"|delivery (time )?expired"
    r"|has been delayed|message expired|too many (messages|connections)|rate limit"
    r"|blocked|spam|blacklist|blocklist|policy|reputation)",
    re.IGNORECASE,
)
_HARD_TEXT = re.compile(
    r"(user unknown|unknown user|no such (user|mailbox|recipient)|does not exist"
    r"|doesn'?t exist|address rejected|recipient (address )?rejected|not found"
    r"|invalid (recipient|mailbox|address)|mailbox unavailable|account (has been )?disabled"
    r"|mailbox (is )?(disabled|inactive)|unrouteable|no mailbox here|undeliverable address)",
    re.IGNORECASE,
)


def _severity(texts: list[str]) -> str:
    """Hard or soft, from RFC 3463 codes first, then the words of the diagnostic."""
    joined = "\n".join(texts)
    for cls, subject, detail in _ENHANCED.findall(joined):
        if cls == "2":
            continue
        if cls == "4":
            return "soft"
        if (subject, detail) == ("2", "2") or subject == "7" or (subject, detail) == ("4", "7"):
            return "soft"  # mailbox full, a policy block, delivery time expired
        return "hard"
    if _HARD_TEXT.search(joined):
        return "hard"
    if _SOFT_TEXT.search(joined):
        return "soft"
    basic = _BASIC.search(joined)
    if basic is not None:
        return "soft" if basic.group(1) == "4" else "hard"
    return "hard"


def _dsn_recipients(message: Message) -> dict[str, tuple[str, str]]:
    """Recipient -> (action, status + diagnostic) from every delivery-status part."""
    found: dict[str, tuple[str, str]] = {}
    for part in message.walk():
        if part.get_content_type() != "message/delivery-status" or not part.is_multipart():
            continue
        for block in part.get_payload():
            if not isinstance(block, Message):
                continue
            action = _header(block, "Action").lower().split(" ")[0]
            recipient = _header(block, "Final-Recipient") or _header(block, "Original-Recipient")
            if not action or ";" not in recipient:
                continue
            address = recipient.split(";", 1)[1].strip().strip("<>").lower()
            detail = f"{_header(block, 'Status')} {_header(block, 'Diagnostic-Code')}".strip()
            found[address] = (action, detail)
    return found


def _original_id(message: Message) -> str | None:
    """The Message-ID of the mail a bounce or receipt returns (its attached headers)."""
    for part in message.walk():
        if part.get_content_type() in ("message/rfc822", "text/rfc822-headers"):
            try:
                inner: Any
                if part.is_multipart():
                    inner = part.get_payload(0)
                else:
                    raw = part.get_payload(decode=True)
                    raw = raw if isinstance(raw, bytes) else b""
                    inner = email.message_from_bytes(raw, policy=email.policy.default)
                found = _ids(_header(inner, "Message-ID"))
            except (ValueError, TypeError, IndexError, AttributeError):
                found = []
            if found:
                return found[0]
    # Plain-text bounces (qmail, Exim) quote the original headers in their body.
    quoted = re.search(r"^\s*Message-ID:\s*(<[^<>\s]+>)", _text(message), re.I | re.M)
    return quoted.group(1) if quoted else None


def _failures(message: Message) -> tuple[set[str], set[str]]:
    try:
        temporary, permanent = all_failures(message)
    except Exception as exc:  # a detector choking on odd mail: no bounce seen
        log.warning("bounce_detector_failed", error=type(exc).__name__)
        return set(), set()

    def decode(values: frozenset[bytes]) -> set[str]:
        return {v.decode(errors="replace").strip("<>").lower() for v in values if b"@" in v}

    return decode(temporary), decode(permanent)


def _bounce(message: Message, sender: str, subject: str, text: str):
    """(kind, recipients, severity, reason) when this is a delivery report, else None."""
    report = collapse_rfc2231_value(message.get_param("report-type") or "").lower()
    dsn = _dsn_recipients(message) if report == "delivery-status" else {}
    if dsn:
        failed = {a: d for a, (act, d) in dsn.items() if act in ("failed", "error")}
        if failed:
            severity = "hard" if any(_severity([d]) == "hard" for d in failed.values()) else "soft"
            return "bounce", sorted(failed), severity, "; ".join(failed.values())[:500]
        delayed = [a for a, (act, _) in dsn.items() if act == "delayed"]
        if delayed:
            return "delayed", sorted(delayed), None, "delivery delayed"
        arrived = ("delivered", "relayed", "expanded")
        delivered = [a for a, (act, _) in dsn.items() if act in arrived]
        return "delivered", sorted(delivered), None, "delivery report"
    temporary, permanent = _failures(message)
    if permanent or temporary:
        severity = "soft" if not permanent else _severity([text])
        return "bounce", sorted(permanent or temporary), severity, _diagnostic(text)
    from_daemon = re.match(r"^(mailer-daemon|postmaster)@", sender, re.IGNORECASE)
    if from_daemon and re.search(
        r"(undeliver|delivery (status notification|failure|has failed)|returned mail"
        r"|failure notice|mail delivery failed|could not be delivered|non-?delivery)",
        subject,
        re.IGNORECASE,
    ):
        # A bounce in a format no detector knows: its recipient is found by the original
        # Message-ID (the caller looks it up), its severity from its text.
        return "bounce", [], _severity([text]), _diagnostic(text)
    return None


def _diagnostic(text: str) -> str:
    for line in text.splitlines():
        if _ENHANCED.search(line) or _BASIC.search(line) or _HARD_TEXT.search(line):
            return line.strip()[:500]
    return text.strip().splitlines()[0][:500] if text.strip() else ""


# ---- the whole message ---------------------------------------------------------------------


def parse(raw: bytes) -> InboundEmail:
    try:
        return _parse(raw)
    except RecursionError:
        # MIME nested thousands deep: built by a machine to hurt parsers, not by a person.
        headers = BytesHeaderParser(policy=email.policy.compat32).parsebytes(raw[:65536])
        return InboundEmail(
            kind="auto_reply",
            from_address=parseaddr(_header(headers, "From"))[1].lower(),
            to_addresses=[],
            subject=_header(headers, "Subject")[:500],
            body="",
            message_id=None,
            reason="unreadable structure",
        )


def _parse(raw: bytes) -> InboundEmail:
    # NUL is no character of mail and PostgreSQL text cannot hold it.
    message = email.message_from_bytes(raw.replace(b"\x00", b""), policy=email.policy.default)
    sender = parseaddr(_header(message, "From"))[1].lower()
    try:
        recipients = [a.lower() for _, a in getaddresses([_header(message, "To")]) if a]
    except (ValueError, TypeError):
        recipients = []
    reply_to = _ids(_header(message, "In-Reply-To"))
    threading = reply_to + [i for i in _ids(_header(message, "References")) if i not in reply_to]
    own_id = _ids(_header(message, "Message-ID"))
    subject = _header(message, "Subject")
    text = _text(message)[:MAX_TEXT].replace("\x00", "")
    common: dict[str, Any] = {
        "from_address": sender,
        "to_addresses": recipients,
        "subject": subject,
        "message_id": own_id[0] if own_id else None,
        "in_reply_to": threading,
        "full_body": text[:50_000],
    }
    bounce = _bounce(message, sender, subject, text)
    if bounce is not None:
        kind, addresses, severity, reason = bounce
        return InboundEmail(
            kind=kind,
            body=text[:5000],
            bounced=addresses,
            original_message_id=_original_id(message),
            bounce_type=severity,
            reason=reason,
            **common,
        )
    automatic = _automatic(message, sender, subject)
    if automatic is not None:
        return InboundEmail(kind="auto_reply", body=text[:5000], reason=automatic, **common)
    words = _own_words(text)
    if _opts_out(words) or _opts_out(subject):
        return InboundEmail(kind="opt_out", body=words, reason="asked to be removed", **common)
    return InboundEmail(kind="reply", body=words, reason="a person's reply", **common)
