"""Buyer acceptance hours (`buyers.schedule`), evaluated in the buyer's timezone.

Format: {"mon": [["09:00", "17:00"]], "tue": [...], ...}. A day that is absent
is closed; an empty schedule {} means always open. Windows are [start, end) in
local wall-clock time; "24:00" ends at midnight. Overnight hours are written as
two windows on consecutive days.
"""

from __future__ import annotations

from datetime import datetime
from functools import lru_cache
from zoneinfo import ZoneInfo

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


@lru_cache(maxsize=512)
def zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)


def _minutes(value: str) -> int:
    hours, _, minutes = value.partition(":")
    if not (hours.isdigit() and minutes.isdigit() and len(minutes) == 2):
        raise ValueError(value)
    total = int(hours) * 60 + int(minutes)
    if not 0 <= total <= 24 * 60 or int(minutes) > 59:
        raise ValueError(value)
    return total


Compiled = tuple[tuple[tuple[int, int], ...], ...] | None  # per weekday; None = always open


@lru_cache(maxsize=4096)
def compile_schedule(raw: str) -> Compiled:
    """Parse a stored schedule (its JSON text) once into minute ranges per weekday."""
    import orjson

    schedule = orjson.loads(raw) if raw else {}
    if not schedule:
        return None
    return tuple(
        tuple((_minutes(start), _minutes(end)) for start, end in schedule.get(day) or ())
        for day in DAYS
    )


def is_open(schedule: Compiled, timezone: str, at: datetime) -> bool:
    if schedule is None:
        return True  # no schedule: open around the clock, no clock arithmetic needed
    local = at.astimezone(zone(timezone))
    minute = local.hour * 60 + local.minute
    return any(start <= minute < end for start, end in schedule[local.weekday()])
