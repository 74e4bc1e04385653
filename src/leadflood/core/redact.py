"""Keep credentials out of everything stored or logged (issue 14).

A provider that echoes a request's headers in its error body would otherwise put our
API key into `job_executions.error`, the API and the log. Two layers:
- every configured secret value (Settings' SecretStr fields) is registered and replaced
  wherever it appears;
- credential-shaped text (Authorization / API-key headers, key=… query parameters,
  bearer and basic tokens) is masked even when the value is not one we know.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, MutableMapping
from typing import Any

MASK = "[redacted]"
_MIN_SECRET = 6  # shorter "secrets" would mask ordinary words

_known: set[str] = set()

_PATTERNS = (
    # Authorization: Bearer abc / "authorization": "Basic abc"
    re.compile(
        r"(?i)(authorization[\"']?\s*[:=]\s*[\"']?\s*(?:bearer|basic|token)?\s*)[^\s\"',;}]+"
    ),
    # X-Api-Key: abc, "api_key": "abc", apikey=abc, access_token=abc, password=abc
    re.compile(
        r"(?i)((?:x-)?(?:api[_-]?key|access[_-]?token|auth[_-]?token|secret|password|passwd)"
        r"[\"']?\s*[:=]\s*[\"']?)[^\s\"'&,;}]+"
    ),
    re.compile(r"(?i)(\bbearer\s+)[A-Za-z0-9._~+/=-]{8,}"),
)


def register(values: Iterable[str | None]) -> None:
    for value in values:
        if value and len(value) >= _MIN_SECRET:
            _known.add(value)


def redact(text: str) -> str:
    for secret in _known:
        if secret in text:
            text = text.replace(secret, MASK)
    for pattern in _PATTERNS:
        text = pattern.sub(lambda m: m.group(1) + MASK, text)
    return text


def redact_event(
    _logger: Any, _method: str, event: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """structlog processor: known secrets out of every string value of a log event."""
    if not _known:
        return event
    for key, value in event.items():
        if isinstance(value, str) and any(secret in value for secret in _known):
            event[key] = redact(value)
    return event
