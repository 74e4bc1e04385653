"""`leadflood demo`: seed the demo configuration and report what exists."""

from __future__ import annotations

import asyncio

import typer

from leadflood.core.runtime import build_runtime
from leadflood.core.settings import Settings
from leadflood.demo.seed import seed_demo


def run_demo(settings: Settings, database_url: str) -> None:
    async def main() -> None:
        runtime = build_runtime(settings, database_url)
        try:
            async with runtime.db.transaction() as conn:
                config = await seed_demo(conn, secret_key=settings.secret_key.get_secret_value())
        finally:
            await runtime.close()
        if config.created:
            typer.echo("demo configuration created:")
            for name, value in config.ids.items():
                typer.echo(f"  {name:<22} {value}")
            for source, key in config.api_keys.items():
                typer.echo(f"  API key for source {source!r} (shown once): {key}")
        else:
            typer.echo("demo configuration already present")

    asyncio.run(main())
