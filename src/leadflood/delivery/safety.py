"""Refuse webhook targets on loopback, private, link-local or metadata addresses (§7)."""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Awaitable
from dataclasses import dataclass
from urllib.parse import urlsplit

from leadflood.core.errors import BadRequest

METADATA_HOSTS = frozenset({"metadata.google.internal", "metadata", "instance-data"})


class DestinationError(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class Target:
    url: str
    host: str
    pinned_ip: str | None  # the vetted address to connect to (None = resolve normally)


def parse_target(url: str | None) -> tuple[str, str, int]:
    if not url:
        raise DestinationError("delivery_channel_unconfigured", "buyer has no webhook URL")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise DestinationError("invalid_url", "webhook URL must be an absolute http(s) URL")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        raise DestinationError("invalid_url", "webhook URL has an invalid port") from None
    return parts.scheme, parts.hostname, port


def is_public(address: str) -> bool:
    ip = ipaddress.ip_address(address)
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped:
        ip = ip.ipv4_mapped
    return not (
        ip.is_private
        or ip.is_loopback
        or ip.is_link_local
        or ip.is_multicast
        or ip.is_reserved
        or ip.is_unspecified
        or not ip.is_global
    )


async def vet(url: str | None, *, allow_private: bool) -> Target:
    """Resolve and check the target; pin the vetted address so a second DNS answer
    (rebinding) cannot redirect the request."""
    _, host, port = parse_target(url)
    assert url is not None
    pinned = await vet_host(host, port, allow_private=allow_private)
    return Target(url, host, pinned)


async def vet_host(host: str, port: int, *, allow_private: bool) -> str | None:
    """The vetted address to connect to (None with private networks allowed: resolve
    normally). Also for mailbox SMTP/IMAP servers, so an operator's form cannot reach
    the metadata service or the internal network in production."""
    if allow_private:
        return None
    if host.lower() in METADATA_HOSTS:
        raise DestinationError("destination_not_allowed", "metadata hosts are not allowed")
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise DestinationError("dns_error", f"cannot resolve host: {exc.strerror}") from None
    addresses = sorted({str(info[4][0]) for info in infos})
    if not addresses or not all(is_public(a) for a in addresses):
        raise DestinationError(
            "destination_not_allowed", f"{host} resolves to a non-public address"
        )
    return addresses[0]


async def refuse_when_saved(vetting: Awaitable[object], field: str) -> None:
    """A destination the sender would refuse is refused when it is saved, with the
    sender's own code and the field named. A name that does not resolve yet is let
    through: it may resolve later, and the sender checks again."""
    try:
        await vetting
    except DestinationError as exc:
        if exc.code == "dns_error":
            return
        raise BadRequest(exc.code, str(exc), details={"field": field}) from None
