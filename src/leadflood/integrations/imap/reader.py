"""Read new mail from an IMAP inbox (imapclient in a thread; nothing of ours is held).

Only UIDs above the last one read are fetched, with BODY.PEEK so the messages stay
unread for the person who also reads this inbox. A changed UIDVALIDITY means the server
renumbered the folder: everything is read again (receiving is idempotent by Message-ID).
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from dataclasses import dataclass, field

from imapclient import IMAPClient
from imapclient.exceptions import IMAPClientError, LoginError

from leadflood.core.providers import PermanentProviderError, TransientProviderError

PROVIDER = "imap"
BATCH = 50  # messages fetched per poll; the rest come next time
MAX_MESSAGE_BYTES = 10 * 1024 * 1024  # as the inbound webhook


@dataclass(frozen=True)
class ImapConfig:
    host: str
    port: int
    security: str  # tls | starttls | none
    username: str
    password: str = field(repr=False)
    folder: str = "INBOX"
    timeout_s: float = 20.0


@dataclass(frozen=True)
class NewMail:
    uidvalidity: int
    messages: list[tuple[int, bytes]]  # (uid, raw), oldest first
    more: bool  # more than one batch was waiting


def _fetch(config: ImapConfig, uidvalidity: int | None, last_uid: int) -> NewMail:
    context = ssl.create_default_context() if config.security in ("tls", "starttls") else None
    client = IMAPClient(
        config.host,
        port=config.port,
        ssl=config.security == "tls",
        ssl_context=context,
        timeout=config.timeout_s,
    )
    try:
        if config.security == "starttls":
            client.starttls(context)
        client.login(config.username, config.password)
        folder = client.select_folder(config.folder, readonly=True)
        validity = int(folder[b"UIDVALIDITY"])
        since = last_uid if validity == uidvalidity else 0
        uids = sorted(u for u in client.search(["UID", f"{since + 1}:*"]) if u > since)
        batch = uids[:BATCH]
        sizes = client.fetch(batch, ["RFC822.SIZE"]) if batch else {}
        wanted = [u for u in batch if sizes.get(u, {}).get(b"RFC822.SIZE", 0) <= MAX_MESSAGE_BYTES]
        bodies = client.fetch(wanted, ["BODY.PEEK[]"]) if wanted else {}
        messages = [(u, bodies[u][b"BODY[]"]) for u in wanted if u in bodies]
        # A message too large to read is passed over (its UID still counts as read).
        messages += [(u, b"") for u in batch if u not in wanted]
        return NewMail(validity, sorted(messages), len(uids) > BATCH)
    finally:
        with contextlib.suppress(IMAPClientError, OSError):
            client.logout()


async def fetch_new(config: ImapConfig, uidvalidity: int | None, last_uid: int) -> NewMail:
    """New mail since `last_uid` (all of it when the folder's UIDVALIDITY changed)."""
    try:
        return await asyncio.to_thread(_fetch, config, uidvalidity, last_uid)
    except LoginError as exc:
        raise PermanentProviderError(PROVIDER, "login_failed", str(exc)[:300]) from None
    except IMAPClientError as exc:
        raise PermanentProviderError(PROVIDER, "imap_error", str(exc)[:300]) from None
    except (OSError, ssl.SSLError, TimeoutError) as exc:
        raise TransientProviderError(
            PROVIDER, "imap_unavailable", f"{type(exc).__name__}: {exc}"[:300]
        ) from None
