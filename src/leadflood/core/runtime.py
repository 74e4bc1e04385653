"""What a running process shares: settings, the database and the webhook HTTP client."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

import aiohttp

from leadflood.core.db import Database
from leadflood.core.logging import service_name
from leadflood.core.settings import Settings
from leadflood.core.tracing import flush_tracing, init_tracing, tracing_enabled


@dataclass
class Runtime:
    settings: Settings
    db: Database
    _webhook_session: aiohttp.ClientSession | None = None

    def webhook_session(self) -> aiohttp.ClientSession:
        """Buyer webhook client (decision 0005), created on the running loop."""
        if self._webhook_session is None or self._webhook_session.closed:
            self._webhook_session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=200, limit_per_host=50),
                auto_decompress=True,
            )
        return self._webhook_session

    async def close(self) -> None:
        if tracing_enabled():  # the spans still buffered, before the process goes
            await asyncio.to_thread(flush_tracing)
        if self._webhook_session is not None:
            await self._webhook_session.close()
        await self.db.dispose()


def resolve_database_url(settings: Settings) -> str:
    """The configured server, or an embedded one started in the data directory."""
    if settings.database_url:
        return settings.database_url
    from leadflood.core.embedded_pg import start_embedded_postgres

    return start_embedded_postgres(settings.data_dir)


def build_runtime(settings: Settings, database_url: str | None = None) -> Runtime:
    if settings.sentry_dsn:
        from leadflood.core.error_reporting import init_error_reporting

        init_error_reporting(settings)
    if settings.otlp_endpoint:
        init_tracing(settings, service_name())
    url = database_url or resolve_database_url(settings)
    db = Database(url, pool_size=settings.db_pool_size)
    return Runtime(settings=settings, db=db)


def runtime_of(request: Any) -> Runtime:
    """The Runtime the app was created with (HTTP handlers and pages)."""
    return request.app.state.runtime
