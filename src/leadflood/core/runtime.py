"""What a running process shares: settings, the database and outbound HTTP."""

from __future__ import annotations

from dataclasses import dataclass, field

import httpx

from leadflood.core.db import Database
from leadflood.core.settings import Settings


@dataclass
class Runtime:
    settings: Settings
    db: Database
    http: httpx.AsyncClient = field(
        default_factory=lambda: httpx.AsyncClient(
            limits=httpx.Limits(max_connections=200, max_keepalive_connections=100),
            follow_redirects=False,
        )
    )

    async def close(self) -> None:
        await self.http.aclose()
        await self.db.dispose()


def resolve_database_url(settings: Settings) -> str:
    """The configured server, or an embedded one started in the data directory."""
    if settings.database_url:
        return settings.database_url
    from leadflood.core.embedded_pg import start_embedded_postgres

    return start_embedded_postgres(settings.data_dir)


def build_runtime(settings: Settings, database_url: str | None = None) -> Runtime:
    url = database_url or resolve_database_url(settings)
    db = Database(url, pool_size=settings.db_pool_size, max_overflow=settings.db_max_overflow)
    return Runtime(settings=settings, db=db)
