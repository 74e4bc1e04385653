"""`leadflood check`: is this configuration fit to take traffic? (issue 19)

Each problem names the setting to change. The configuration's own rules run first (no
I/O), then what only the running environment can tell: the database reachable and
migrated, the SMTP server reachable when email is used.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from urllib.parse import urlsplit

import asyncpg

from leadflood.core.db import libpq_url
from leadflood.core.settings import Environment, Settings


@dataclass(frozen=True)
class Problem:
    setting: str
    message: str

    def __str__(self) -> str:
        return f"{self.setting}: {self.message}"


def configuration_problems(settings: Settings) -> list[Problem]:
    """What is unsafe or incomplete for production in the settings alone. (A weak or
    missing LEADFLOOD_SECRET_KEY already stops production from loading its settings.)"""
    if settings.env != Environment.production:
        return []
    problems = []
    base = settings.public_base_url
    if not base or urlsplit(base).scheme != "https":
        problems.append(
            Problem(
                "LEADFLOOD_PUBLIC_BASE_URL",
                "set it to the https:// address people and providers reach (unsubscribe links "
                "and posting instructions use it)",
            )
        )
    if settings.allow_private_networks:
        problems.append(
            Problem(
                "LEADFLOOD_ALLOW_PRIVATE_NETWORKS",
                "must be off in production: a buyer URL could reach internal services",
            )
        )
    if settings.smtp_sink_port is not None:
        problems.append(
            Problem("LEADFLOOD_SMTP_SINK_PORT", "the catch-all SMTP sink is for local use only")
        )
    if settings.sample_providers:
        problems.append(
            Problem("LEADFLOOD_SAMPLE_PROVIDERS", "the offline sample providers invent prospects")
        )
    if "*" in settings.cors_origins:
        problems.append(
            Problem(
                "LEADFLOOD_CORS_ORIGINS", "name the browser origins; '*' lets any site call the API"
            )
        )
    if settings.metrics_token is None:
        problems.append(
            Problem(
                "LEADFLOOD_METRICS_TOKEN", "set a token to scrape /metrics (closed without one)"
            )
        )
    otlp = settings.otlp_endpoint
    if otlp and settings.otlp_headers is not None and urlsplit(otlp).scheme != "https":
        problems.append(
            Problem(
                "LEADFLOOD_OTLP_ENDPOINT",
                "use https:// (LEADFLOOD_OTLP_HEADERS, a collector key, would travel in clear)",
            )
        )
    return problems


async def environment_problems(settings: Settings, database_url: str, head: str) -> list[Problem]:
    """The database reachable and at the code's migration `head`; SMTP reachable when
    email is used (a buyer on the email channel, or an SMTP host configured)."""
    problems = []
    dsn = libpq_url(database_url)
    try:
        conn = await asyncpg.connect(dsn, timeout=5)
    except (OSError, asyncpg.PostgresError, TimeoutError) as exc:
        return [Problem("LEADFLOOD_DATABASE_URL", f"cannot connect: {type(exc).__name__}")]
    try:
        version = (
            await conn.fetchval("SELECT version_num FROM alembic_version")
            if await conn.fetchval("SELECT to_regclass('alembic_version') IS NOT NULL")
            else None
        )
        emails = 0
        if version is not None and await conn.fetchval("SELECT to_regclass('buyers') IS NOT NULL"):
            emails = await conn.fetchval(
                "SELECT count(*) FROM buyers WHERE delivery_channel = 'email' AND status = 'active'"
            )
    finally:
        await conn.close()
    if version != head:
        problems.append(
            Problem(
                "database",
                f"at migration {version or 'none'}, the code needs {head}: run `leadflood migrate`",
            )
        )
    if settings.smtp_host:
        try:
            _, writer = await asyncio.wait_for(
                asyncio.open_connection(settings.smtp_host, settings.smtp_port), timeout=5
            )
            writer.close()
        except (OSError, TimeoutError) as exc:
            problems.append(
                Problem(
                    "LEADFLOOD_SMTP_HOST",
                    f"{settings.smtp_host}:{settings.smtp_port} unreachable ({type(exc).__name__})",
                )
            )
    elif emails:
        problems.append(
            Problem(
                "LEADFLOOD_SMTP_HOST",
                f"{emails} active buyer(s) take leads by email: set an SMTP host",
            )
        )
    return problems
