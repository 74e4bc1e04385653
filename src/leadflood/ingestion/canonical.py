"""Canonical forms used to classify a posted lead to its source (DISTRIBUTION.md §3)."""

from __future__ import annotations

import re

_SLASHES = re.compile(r"/{2,}")


def canonical_source_key(value: str) -> str:
    return value.strip().lower()


def canonical_host(host: str) -> str:
    """Lower-case, port removed, trailing dot removed (IPv6 literals keep brackets)."""
    host = host.strip().lower()
    if host.startswith("["):
        end = host.find("]")
        host = host[: end + 1] if end != -1 else host
    elif host.count(":") == 1:
        host = host.split(":", 1)[0]
    return host.rstrip(".")


def canonical_path(path: str) -> str:
    """Repeated slashes collapsed, trailing slash removed, lower-cased; root stays '/'."""
    path = _SLASHES.sub("/", "/" + path.strip()).lower()
    if len(path) > 1:
        path = path.rstrip("/")
    return path or "/"


def prefix_matches(prefix: str, path: str) -> bool:
    """True when `prefix` covers `path` on a segment boundary."""
    if prefix == "/":
        return True
    return path == prefix or path.startswith(prefix + "/")
