"""All SQL of mailboxes, sequences, enrollments, outbound messages and suppressions."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from leadflood.core.api import LocalTime
from leadflood.core.uow import Conn
from leadflood.prospecting.repository import LEAD_COLUMNS, Prospect

# ---- sequences --------------------------------------------------------------------------

SEQUENCE_COLUMNS = (
    "id, name, status, mailbox_id, mailbox_ids, quiet_start, quiet_end, timezone, created_by, "
    "created_at, updated_at"
)
STEP_COLUMNS = (
    "id, sequence_id, position, channel, delay_minutes, subject_template, body_template, "
    "whatsapp_template_id, template_params"
)


@dataclass(frozen=True, slots=True, kw_only=True)
class SequenceHeader:
    id: uuid.UUID
    name: str
    status: str
    mailbox_id: uuid.UUID | None
    mailbox_ids: list[uuid.UUID]  # more mailboxes to rotate over, besides mailbox_id
    quiet_start: LocalTime | None  # WhatsApp/SMS steps wait out [quiet_start, quiet_end)
    quiet_end: LocalTime | None
    timezone: str  # of the quiet hours, where the lead's number names no zone of its own
    created_by: uuid.UUID | None
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True, slots=True, kw_only=True)
class Step:
    id: uuid.UUID
    sequence_id: uuid.UUID
    position: int
    channel: str
    delay_minutes: int
    subject_template: str | None
    body_template: str
    whatsapp_template_id: int | None  # Trengo's id of an approved WhatsApp template (HSM)
    template_params: list[str]  # its {{1}}, {{2}}... as templates over the lead


@dataclass(frozen=True, slots=True, kw_only=True)
class Counts:
    enrolled: int
    active: int
    completed: int
    replied: int


@dataclass(frozen=True, slots=True, kw_only=True)
class Sequence(SequenceHeader):
    steps: list[Step]
    counts: Counts


@dataclass(frozen=True, slots=True, kw_only=True)
class SequenceListItem(SequenceHeader):
    steps: int
    enrolled: int
    active: int


@dataclass(frozen=True, slots=True, kw_only=True)
class EnrollmentListItem:
    id: uuid.UUID
    lead_id: uuid.UUID
    status: str
    next_position: int
    next_step_at: datetime | None
    stop_reason: str | None
    created_at: datetime
    finished_at: datetime | None
    first_name: str | None
    last_name: str | None
    email: str | None
    company: str | None


@dataclass(frozen=True, slots=True, kw_only=True)
class SequenceDetail(Sequence):
    enrollments: list[EnrollmentListItem]


@dataclass(frozen=True, slots=True, kw_only=True)
class DueStep:
    enrollment_id: uuid.UUID
    lead_id: uuid.UUID
    sequence_id: uuid.UUID
    next_position: int
    kept_mailbox_id: uuid.UUID | None
    mailbox_id: uuid.UUID | None
    mailbox_ids: list[uuid.UUID]
    step_id: uuid.UUID
    channel: str
    next_delay: int | None

    @property
    def pool(self) -> list[uuid.UUID]:
        """The mailboxes this step may go out from, the sequence's main one first."""
        return list(
            dict.fromkeys([*([self.mailbox_id] if self.mailbox_id else []), *self.mailbox_ids])
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class Enrollment:
    id: uuid.UUID
    sequence_id: uuid.UUID
    lead_id: uuid.UUID
    status: str
    next_position: int
    next_step_at: datetime | None
    stop_reason: str | None
    enrolled_by: uuid.UUID | None
    created_at: datetime
    updated_at: datetime
    finished_at: datetime | None
    last_position: int | None
    sequence_status: str
    quiet_start: LocalTime | None
    quiet_end: LocalTime | None
    timezone: str


async def insert_sequence(
    conn: Conn, values: dict[str, Any], created_by: uuid.UUID | None
) -> SequenceHeader:
    """`values`: name, mailbox_id, mailbox_ids, quiet_start, quiet_end, timezone."""
    columns = [*values, "created_by"]
    row = await conn.fetchrow(
        f"INSERT INTO outreach.sequences ({', '.join(columns)}) "
        f"VALUES ({', '.join(f'${i}' for i in range(1, len(columns) + 1))}) "
        f"RETURNING {SEQUENCE_COLUMNS}",
        *values.values(),
        created_by,
    )
    return SequenceHeader(**row)


async def update_sequence(conn: Conn, sequence_id: uuid.UUID, values: dict[str, Any]) -> bool:
    sets = ", ".join(f"{c} = ${i}" for i, c in enumerate(values, start=2))
    status = await conn.execute(
        f"UPDATE outreach.sequences SET {sets} WHERE id = $1", sequence_id, *values.values()
    )
    return status == "UPDATE 1"


async def pick_mailbox(conn: Conn, pool: list[uuid.UUID], since: datetime) -> uuid.UUID | None:
    """Rotation: of the pool's active mailboxes, the one given the fewest emails since
    `since` (messages scheduled in this transaction count, so a batch spreads out)."""
    return await conn.fetchval(
        "SELECT m.id FROM outreach.mailboxes m WHERE m.id = ANY ($1::uuid[]) AND m.active "
        "ORDER BY (SELECT count(*) FROM outreach.messages x WHERE x.mailbox_id = m.id "
        "          AND x.direction = 'outbound' AND x.created_at >= $2), "
        "         array_position($1::uuid[], m.id) LIMIT 1",
        pool,
        since,
    )


async def keep_mailbox(conn: Conn, enrollment_id: uuid.UUID, mailbox_id: uuid.UUID) -> None:
    """The lead's thread stays on the mailbox that wrote to it first."""
    await conn.execute(
        "UPDATE outreach.enrollments SET mailbox_id = $2 WHERE id = $1 AND mailbox_id IS NULL",
        enrollment_id,
        mailbox_id,
    )


async def replace_steps(conn: Conn, sequence_id: uuid.UUID, steps: list[dict[str, Any]]) -> None:
    """Steps are matched by position, so messages keep pointing at the step they sent."""
    for position, step in enumerate(steps, start=1):
        await conn.execute(
            "INSERT INTO outreach.sequence_steps (sequence_id, position, channel, delay_minutes, "
            "                                      subject_template, body_template, "
            "                                      whatsapp_template_id, template_params) "
            "VALUES ($1, $2, $3, $4, $5, $6, $7, $8) "
            "ON CONFLICT (sequence_id, position) DO UPDATE SET channel = EXCLUDED.channel, "
            "  delay_minutes = EXCLUDED.delay_minutes, "
            "  subject_template = EXCLUDED.subject_template, "
            "  body_template = EXCLUDED.body_template, "
            "  whatsapp_template_id = EXCLUDED.whatsapp_template_id, "
            "  template_params = EXCLUDED.template_params",
            sequence_id,
            position,
            step["channel"],
            step["delay_minutes"],
            step["subject_template"],
            step["body_template"],
            step.get("whatsapp_template_id"),
            step.get("template_params") or [],
        )
    await conn.execute(
        "DELETE FROM outreach.sequence_steps WHERE sequence_id = $1 AND position > $2",
        sequence_id,
        len(steps),
    )


async def get_step(conn: Conn, step_id: uuid.UUID) -> Step | None:
    row = await conn.fetchrow(
        f"SELECT {STEP_COLUMNS} FROM outreach.sequence_steps WHERE id = $1", step_id
    )
    return Step(**row) if row else None


async def get_sequence(conn: Conn, sequence_id: uuid.UUID) -> Sequence | None:
    row = await conn.fetchrow(
        f"SELECT {SEQUENCE_COLUMNS} FROM outreach.sequences WHERE id = $1", sequence_id
    )
    if row is None:
        return None
    steps = await conn.fetch(
        f"SELECT {STEP_COLUMNS} FROM outreach.sequence_steps WHERE sequence_id = $1 "
        "ORDER BY position",
        sequence_id,
    )
    counts = await conn.fetchrow(
        "SELECT count(*) AS enrolled, count(*) FILTER (WHERE status = 'active') AS active, "
        "       count(*) FILTER (WHERE status = 'completed') AS completed, "
        "       count(*) FILTER (WHERE stop_reason = 'replied') AS replied "
        "FROM outreach.enrollments WHERE sequence_id = $1",
        sequence_id,
    )
    return Sequence(**row, steps=[Step(**step) for step in steps], counts=Counts(**counts))


async def list_sequences(conn: Conn) -> list[SequenceListItem]:
    rows = await conn.fetch(
        f"SELECT {', '.join('s.' + c for c in SEQUENCE_COLUMNS.split(', '))}, "
        "  (SELECT count(*) FROM outreach.sequence_steps st WHERE st.sequence_id = s.id) AS steps, "
        "  (SELECT count(*) FROM outreach.enrollments e WHERE e.sequence_id = s.id) AS enrolled, "
        "  (SELECT count(*) FROM outreach.enrollments e "
        "   WHERE e.sequence_id = s.id AND e.status = 'active') AS active "
        "FROM outreach.sequences s ORDER BY s.created_at DESC"
    )
    return [SequenceListItem(**r) for r in rows]


async def set_status(conn: Conn, sequence_id: uuid.UUID, status: str) -> bool:
    result = await conn.execute(
        "UPDATE outreach.sequences SET status = $2 WHERE id = $1", sequence_id, status
    )
    return result == "UPDATE 1"


async def delete_sequence(conn: Conn, sequence_id: uuid.UUID) -> bool:
    return (
        await conn.execute("DELETE FROM outreach.sequences WHERE id = $1", sequence_id)
        == "DELETE 1"
    )


# ---- enrollments ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class EnrollmentCandidate(Prospect):
    suppressed: bool


async def leads_for_enrollment(conn: Conn, lead_ids: list[uuid.UUID]) -> list[EnrollmentCandidate]:
    columns = ", ".join("l." + c for c in LEAD_COLUMNS.split(", "))
    rows = await conn.fetch(
        f"SELECT {columns}, (s.address IS NOT NULL) AS suppressed "
        "FROM outreach.leads l LEFT JOIN outreach.suppressions s ON s.address = l.normalized_email "
        "WHERE l.id = ANY($1::uuid[])",
        lead_ids,
    )
    return [EnrollmentCandidate(**r) for r in rows]


async def insert_enrollment(
    conn: Conn,
    sequence_id: uuid.UUID,
    lead_id: uuid.UUID,
    first_step_at: datetime,
    enrolled_by: uuid.UUID | None,
) -> uuid.UUID | None:
    return await conn.fetchval(
        "INSERT INTO outreach.enrollments (sequence_id, lead_id, next_step_at, enrolled_by) "
        "VALUES ($1, $2, $3, $4) ON CONFLICT (lead_id, sequence_id) DO NOTHING RETURNING id",
        sequence_id,
        lead_id,
        first_step_at,
        enrolled_by,
    )


async def list_enrollments(conn: Conn, sequence_id: uuid.UUID) -> list[EnrollmentListItem]:
    rows = await conn.fetch(
        "SELECT e.id, e.lead_id, e.status, e.next_position, e.next_step_at, e.stop_reason, "
        "       e.created_at, e.finished_at, l.first_name, l.last_name, l.email, l.company "
        "FROM outreach.enrollments e JOIN outreach.leads l ON l.id = e.lead_id "
        "WHERE e.sequence_id = $1 ORDER BY e.created_at, e.id",
        sequence_id,
    )
    return [EnrollmentListItem(**r) for r in rows]


# Due steps of active enrollments in active sequences; SKIP LOCKED lets ticks overlap.
_DUE = """
SELECT e.id AS enrollment_id, e.lead_id, e.sequence_id, e.next_position,
       e.mailbox_id AS kept_mailbox_id, s.mailbox_id, s.mailbox_ids, st.id AS step_id, st.channel,
       (SELECT delay_minutes FROM outreach.sequence_steps n
        WHERE n.sequence_id = e.sequence_id AND n.position = e.next_position + 1) AS next_delay
FROM outreach.enrollments e
JOIN outreach.sequences s ON s.id = e.sequence_id AND s.status = 'active'
JOIN outreach.sequence_steps st ON st.sequence_id = e.sequence_id
                               AND st.position = e.next_position
WHERE e.status = 'active' AND e.next_step_at <= $1
ORDER BY e.next_step_at, e.id
LIMIT $2
FOR UPDATE OF e SKIP LOCKED
"""


async def due_steps(conn: Conn, now: datetime, limit: int) -> list[DueStep]:
    return [DueStep(**r) for r in await conn.fetch(_DUE, now, limit)]


async def advance(conn: Conn, enrollment_id: uuid.UUID, next_step_at: datetime | None) -> None:
    await conn.execute(
        "UPDATE outreach.enrollments SET next_position = next_position + 1, next_step_at = $2 "
        "WHERE id = $1",
        enrollment_id,
        next_step_at,
    )


async def get_enrollment(conn: Conn, enrollment_id: uuid.UUID) -> Enrollment | None:
    row = await conn.fetchrow(
        "SELECT e.id, e.sequence_id, e.lead_id, e.status, e.next_position, e.next_step_at, "
        "       e.stop_reason, e.enrolled_by, e.created_at, e.updated_at, e.finished_at, "
        "       (SELECT max(position) FROM outreach.sequence_steps st "
        "        WHERE st.sequence_id = e.sequence_id) AS last_position, "
        "       s.status AS sequence_status, s.quiet_start, s.quiet_end, s.timezone "
        "FROM outreach.enrollments e JOIN outreach.sequences s ON s.id = e.sequence_id "
        "WHERE e.id = $1",
        enrollment_id,
    )
    return Enrollment(**row) if row else None


async def delay_from_send(
    conn: Conn, enrollment_id: uuid.UUID, step_id: uuid.UUID, sent_at: datetime
) -> None:
    """Restart the wait for the step after `step_id` at its actual send, unless that
    step was scheduled already."""
    await conn.execute(
        "UPDATE outreach.enrollments e "
        "SET next_step_at = $3::timestamptz + make_interval(mins => nxt.delay_minutes) "
        "FROM outreach.sequence_steps cur JOIN outreach.sequence_steps nxt "
        "  ON nxt.sequence_id = cur.sequence_id AND nxt.position = cur.position + 1 "
        "WHERE e.id = $1 AND cur.id = $2 AND e.status = 'active' "
        "  AND e.next_position = nxt.position",
        enrollment_id,
        step_id,
        sent_at,
    )


async def first_email_subject(conn: Conn, enrollment_id: uuid.UUID) -> str | None:
    """The subject template of the first email step of the enrollment's sequence."""
    return await conn.fetchval(
        "SELECT st.subject_template FROM outreach.enrollments e "
        "JOIN outreach.sequence_steps st ON st.sequence_id = e.sequence_id "
        "WHERE e.id = $1 AND st.channel = 'email' ORDER BY st.position LIMIT 1",
        enrollment_id,
    )


async def complete_if_done(conn: Conn, enrollment_id: uuid.UUID) -> None:
    await conn.execute(
        "UPDATE outreach.enrollments e SET status = 'completed', finished_at = now() "
        "WHERE e.id = $1 AND e.status = 'active' AND e.next_step_at IS NULL "
        "  AND e.next_position > (SELECT max(position) FROM outreach.sequence_steps st "
        "                         WHERE st.sequence_id = e.sequence_id)",
        enrollment_id,
    )


async def stop_enrollment(
    conn: Conn, sequence_id: uuid.UUID, lead_id: uuid.UUID, reason: str
) -> Enrollment | None:
    """Stop the lead's enrollment in this sequence (if it is active); the row as it is."""
    await conn.execute(
        "UPDATE outreach.enrollments SET status = 'stopped', stop_reason = $3, "
        "next_step_at = NULL, finished_at = now() "
        "WHERE sequence_id = $1 AND lead_id = $2 AND status = 'active'",
        sequence_id,
        lead_id,
        reason,
    )
    enrollment_id = await conn.fetchval(
        "SELECT id FROM outreach.enrollments WHERE sequence_id = $1 AND lead_id = $2",
        sequence_id,
        lead_id,
    )
    return await get_enrollment(conn, enrollment_id) if enrollment_id else None


async def stop_enrollments(conn: Conn, lead_id: uuid.UUID, reason: str) -> int:
    """Every active enrollment of the lead stops (a reply, bounce or unsubscribe)."""
    result = await conn.execute(
        "UPDATE outreach.enrollments SET status = 'stopped', stop_reason = $2, "
        "next_step_at = NULL, finished_at = now() WHERE lead_id = $1 AND status = 'active'",
        lead_id,
        reason,
    )
    return int(result.split()[-1])


# ---- suppressions -----------------------------------------------------------------------
