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
        }
    ),
    Role.agent: frozenset({Permission.config_read, Permission.leads_read}),
}


def allows(role: str, permission: Permission) -> bool:
    try:
        return permission in POLICY[Role(role)]
    except ValueError:
        return False
