"""Text rules shared by every input schema."""

from __future__ import annotations

import re

# CR, LF and the other C0 controls (tab excepted) and DEL: a name, address or subject
# with them could split an email header (header injection) or a log line.
_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")


def single_line(value: str) -> str:
    """AfterValidator: refuse line breaks and control characters in one-line fields."""
    if _CONTROL.search(value):
        raise ValueError("must be a single line without control characters (no CR or LF)")
    return value
