"""Alert rules (issue 19): evaluated every minute by a worker (`alerts.evaluate`); a new
alert is sent to the operator (email and/or a Slack-compatible webhook, by the
`alerts.send` job); an alert whose condition clears resolves itself; people acknowledge
and resolve alerts in the UI or the API.

The workers' own absence cannot be found by a worker: the serve process watches the
heartbeat they stamp (`system.heartbeat`) and raises and sends that alert itself.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from leadflood.alerts import repository as repo
from leadflood.alerts.repository import Alert, Finding
from leadflood.core.errors import Conflict, NotFound
from leadflood.core.principal import Principal
from leadflood.core.settings import Settings
from leadflood.core.uow import Tx

ALERT_JOB = "alerts.send"
HEARTBEAT_RULE = "worker_heartbeat"


def thresholds(settings: Settings) -> dict[str, float | None]:
    """Each rule and its threshold (the settings `alert_*`; None: the rule has none)."""
    return {
        "queue_backlog": settings.alert_queue_age_minutes,
        "buyer_failing": settings.alert_buyer_error_rate,
        "source_silent": settings.alert_source_silent_hours,
        "unsold_piling": settings.alert_unsold_per_hour,
        "provider_quota": None,
        "mailbox_bounces": settings.alert_mailbox_bounce_rate,
    }


@dataclass(frozen=True)
class Evaluation:
    opened: list[tuple[str, Finding]]
    resolved: int


async def evaluate(tx: Tx, settings: Settings) -> Evaluation:
    """Every rule once: new alerts opened (and queued for sending), persisting ones
    touched, cleared ones resolved."""
    opened: list[tuple[str, Finding]] = []
    resolved = 0
    for rule, threshold in thresholds(settings).items():
        found = await repo.findings(tx, rule, threshold)
        for finding in found:
            _, new = await repo.raise_alert(tx, rule, finding)
            if new:
                opened.append((rule, finding))
                await tx.enqueue(
                    ALERT_JOB,
                    {"kind": "alert", "rule": rule, "text": f"{finding.title}: {finding.detail}"},
                )
        resolved += await repo.resolve_cleared(tx, rule, [f.subject for f in found])
    return Evaluation(opened, resolved)


async def heartbeat_finding(tx: Tx, settings: Settings, up_s: float) -> Finding | None:
    """The workers' heartbeat is older than the threshold (or, `up_s` seconds after this
    process started, was never stamped): no worker is taking jobs."""
    age = await repo.heartbeat_age_s(tx)
    limit = settings.alert_heartbeat_minutes * 60
    if age is None and up_s < limit:
        return None
    if age is not None and age < limit:
        return None
    detail = "never seen" if age is None else f"last seen {round(age / 60, 1)} min ago"
    return Finding("workers", "No worker is running", f"the workers' heartbeat was {detail}")


async def raise_heartbeat(tx: Tx, finding: Finding | None) -> bool:
    """Open (True when new) or clear the heartbeat alert."""
    if finding is None:
        await repo.resolve_cleared(tx, HEARTBEAT_RULE, [])
        return False
    _, new = await repo.raise_alert(tx, HEARTBEAT_RULE, finding)
    return new


async def alerts(tx: Tx, status: str | None, limit: int = 200) -> list[Alert]:
    return await repo.list_alerts(tx, status, limit)


async def change(tx: Tx, principal: Principal | None, alert_id: uuid.UUID, status: str) -> str:
    """Acknowledge (an open alert) or resolve (a live one); the new status."""
    current = await repo.alert_status(tx, alert_id)
    if current is None:
        raise NotFound("alert_not_found", "no alert with this id")
    user = principal.user_id if principal else None
    if not await repo.set_status(tx, alert_id, status, user):
        raise Conflict("invalid_transition", f"a {current} alert cannot be {status}")
    action = {"acknowledged": "acknowledge", "resolved": "resolve"}[status]
    await tx.audit(principal, action, "alert", alert_id, {})
    return status
