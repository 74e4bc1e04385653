"""Roles and the permission each route needs: one map, checked on every /v1 route."""

from __future__ import annotations

from enum import StrEnum


class Role(StrEnum):
    admin = "admin"
    manager = "manager"
    agent = "agent"


class Permission(StrEnum):
    config_read = "config:read"
    config_write = "config:write"
    secrets_write = "secrets:write"  # source API keys, buyer webhook secrets
    leads_read = "leads:read"
    leads_act = "leads:act"  # re-deliver, re-route
    users_manage = "users:manage"
    audit_read = "audit:read"
    outreach_read = "outreach:read"  # ICPs, outreach leads, job status
    outreach_write = "outreach:write"  # create and enrich outreach leads, run searches
    icps_write = "icps:write"  # define and change ICPs
    sequences_write = "sequences:write"  # sequences, their steps, mailboxes, suppressions
    billing = "billing"  # balances, top-ups, invoices, returns


POLICY: dict[Role, frozenset[Permission]] = {
    Role.admin: frozenset(Permission),
    Role.manager: frozenset(
        {
            Permission.config_read,
            Permission.config_write,
            Permission.secrets_write,
            Permission.leads_read,
            Permission.leads_act,
            Permission.audit_read,
            Permission.outreach_read,
            Permission.outreach_write,
            Permission.icps_write,
            Permission.sequences_write,
            Permission.billing,
        }
    ),
    # Agents work leads (search, enrich, create) but do not change configuration or ICPs.
    Role.agent: frozenset(
        {
            Permission.config_read,
            Permission.leads_read,
            Permission.outreach_read,
            Permission.outreach_write,
        }
    ),
}


def allows(role: str, permission: Permission) -> bool:
    try:
        return permission in POLICY[Role(role)]
    except ValueError:
        return False
