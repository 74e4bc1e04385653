"""Least-privilege database roles (issue 19): the schema belongs to an owner role that
`leadflood migrate` runs as; the app runs as a role that reads and writes rows and
cannot change the schema. `leadflood db grant-app ROLE` (run as the owner, after each
migration or once: default privileges cover later tables) grants exactly that."""

from __future__ import annotations

import re

import asyncpg

from leadflood.core.db import libpq_url

SCHEMAS = ("public", "outreach")
_ROLE = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


def grants(role: str, database: str) -> list[str]:
    if not _ROLE.match(role):
        raise ValueError("a role name is lowercase letters, digits and underscores")
    schemas = ", ".join(SCHEMAS)
    return [
        # PostgreSQL before 15 lets every role create in `public`: not the app.
        "REVOKE CREATE ON SCHEMA public FROM PUBLIC",
        f'GRANT CONNECT ON DATABASE "{database}" TO {role}',
        f"GRANT USAGE ON SCHEMA {schemas} TO {role}",
        f"GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA {schemas} TO {role}",
        f"GRANT USAGE, SELECT, UPDATE ON ALL SEQUENCES IN SCHEMA {schemas} TO {role}",
        f"GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA {schemas} TO {role}",
        # What later migrations create (as the owner running this) is granted too.
        f"ALTER DEFAULT PRIVILEGES IN SCHEMA {schemas} "
        f"GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO {role}",
        f"ALTER DEFAULT PRIVILEGES IN SCHEMA {schemas} "
        f"GRANT USAGE, SELECT, UPDATE ON SEQUENCES TO {role}",
        f"ALTER DEFAULT PRIVILEGES IN SCHEMA {schemas} GRANT EXECUTE ON FUNCTIONS TO {role}",
    ]


async def grant_app_role(owner_url: str, role: str) -> int:
    """Run the grants as the schema's owner; the number of statements run."""
    conn = await asyncpg.connect(libpq_url(owner_url))
    try:
        database = await conn.fetchval("SELECT current_database()")
        statements = grants(role, database)
        async with conn.transaction():
            for statement in statements:
                await conn.execute(statement)
    finally:
        await conn.close()
    return len(statements)
