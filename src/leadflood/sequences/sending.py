"""When a mailbox may send: its daily window in its own timezone (pure functions)."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

if TYPE_CHECKING:
    from leadflood.messaging.repository import Mailbox


def local_day(now: datetime, timezone: str):
    return now.astimezone(ZoneInfo(timezone)).date()


def wait_for_window(now: datetime, timezone: str, start: time, end: time) -> timedelta | None:
    """None inside [start, end) local time; otherwise how long until the next start."""
    zone = ZoneInfo(timezone)
    local = now.astimezone(zone)
    if start <= local.time() < end:
        return None
    day = local.date() if local.time() < start else local.date() + timedelta(days=1)
    opens = datetime.combine(day, start, tzinfo=zone)
    return opens.astimezone(UTC) - now.astimezone(UTC)


def wait_for_tomorrow(now: datetime, timezone: str, start: time) -> timedelta:
    """The daily limit is used up: wait for tomorrow's window."""
    zone = ZoneInfo(timezone)
    tomorrow = now.astimezone(zone).date() + timedelta(days=1)
    return datetime.combine(tomorrow, start, tzinfo=zone).astimezone(UTC) - now.astimezone(UTC)


def daily_limit_on(mailbox: Mailbox, day: date) -> int:
    """The day's limit: the warm-up ramp (start + step per day since it began), never
    above the mailbox's daily limit."""
    if mailbox.warmup_start is None or mailbox.warmup_started_on is None:
        return mailbox.daily_limit
    days = max((day - mailbox.warmup_started_on).days, 0)
    return min(mailbox.daily_limit, mailbox.warmup_start + days * mailbox.warmup_step)


def wait_out_quiet_hours(
    now: datetime, timezone: str, start: time | None, end: time | None
) -> timedelta | None:
    """None outside [start, end) local time (across midnight when start > end);
    otherwise how long until `end`."""
    if start is None or end is None or start == end:
        return None
    zone = ZoneInfo(timezone)
    local = now.astimezone(zone)
    t = local.time()
    quiet = start <= t < end if start < end else (t >= start or t < end)
    if not quiet:
        return None
    day = local.date() if t < end else local.date() + timedelta(days=1)
    return datetime.combine(day, end, tzinfo=zone).astimezone(UTC) - now.astimezone(UTC)
