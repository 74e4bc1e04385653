"""`leadflood demo`: seed, start a demo buyer and the server, post a realistic batch of
leads (valid, invalid, duplicate, unroutable) and print where each ended and why."""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import signal
import threading
import time
import uuid

import httpx
import typer
import uvicorn

from leadflood.app import create_app
from leadflood.catalog.service import rotate_source_api_key
from leadflood.core.runtime import build_runtime
from leadflood.core.settings import Settings
from leadflood.core.uow import single_statements, unit_of_work
from leadflood.demo.buyer_endpoint import start_demo_buyer
from leadflood.demo.outreach import run_outreach_demo
from leadflood.demo.repository import LeadSummary, lead_summaries
from leadflood.demo.seed import (
    DEMO_ADMIN_EMAIL,
    DEMO_ADMIN_PASSWORD,
    ensure_demo_admin,
    seed_demo,
)

DEMO_SINK_PORT = 2525
DEMO_BUYER_PORT = 8099
SETTLED = {"rejected", "delivered", "delivery_failed", "unsold"}


def _scenarios(run: str) -> list[tuple[str, str, dict]]:
    """(expected outcome, source, body). Phones vary per run so re-runs are not duplicates."""
    exchange = 600 + int(run, 16) % 300

    def phone(n: int) -> str:
        return f"(602) {exchange}-{n:04d}"

    return [
        (
            "valid",
            "sunquotes",
            {
                "first_name": "Maria",
                "last_name": "Garcia",
                "phone": phone(1),
                "email": "maria.garcia@example.com",
                "postal_code": "85004",
                "consent": True,
                "roof_age_years": 12,
            },
        ),
        (
            "valid",
            "sunquotes",
            {
                "first_name": "James",
                "last_name": "Chen",
                "phone": phone(2),
                "postal_code": "85016",
                "consent": True,
            },
        ),
        (
            "valid",
            "roofpros",
            {
                "first_name": "Aisha",
                "last_name": "Khan",
                "phone": phone(3),
                "postal_code": "85016",
                "consent": True,
            },
        ),
        (
            "valid",
            "roofpros",
            {
                "first_name": "Tom",
                "last_name": "Brady",
                "phone": phone(4),
                "postal_code": "85006",
                "consent": True,
            },
        ),
        (
            "invalid: no consent",
            "sunquotes",
            {"first_name": "Lee", "phone": phone(5), "postal_code": "85004", "consent": False},
        ),
        (
            "invalid: bad phone, no zip",
            "sunquotes",
            {"first_name": "Kim", "phone": "555-0199", "consent": True},
        ),
        (
            "duplicate of Maria",
            "sunquotes",
            {"first_name": "Mary", "phone": phone(1), "postal_code": "85004", "consent": True},
        ),
        (
            "unroutable: no buyer in 86001",
            "sunquotes",
            {"first_name": "Zoe", "phone": phone(6), "postal_code": "86001", "consent": True},
        ),
    ]


def run_demo(settings: Settings, database_url: str, *, serve: bool = False) -> None:
    # The demo runs offline: outreach uses the shipped sample providers.
    settings.sample_providers = True
    settings.prospect_provider = "sample"
    settings.enrichment_provider = "sample"
    if not settings.smtp_host:
        # Outreach email goes to the built-in catch-all sink (shown at /outreach/sink).
        settings.smtp_sink_port = DEMO_SINK_PORT
        settings.smtp_host, settings.smtp_port = "127.0.0.1", DEMO_SINK_PORT

    async def prepare() -> str:
        seeding = build_runtime(settings, database_url)
        try:
            async with unit_of_work(seeding.db) as conn:
                config = await seed_demo(
                    conn,
                    secret_key=settings.secret_key.get_secret_value(),
                    buyer_webhook_base=f"http://127.0.0.1:{DEMO_BUYER_PORT}",
                )
                key = await rotate_source_api_key(conn, config.ids["source:roofpros"])
                await ensure_demo_admin(conn)
        finally:
            await seeding.close()
        return key

    roofpros_key = asyncio.run(prepare())
    typer.echo("demo configuration ready (markets, verticals, offers, sources, 3 buyers)")
    start_demo_buyer(DEMO_BUYER_PORT)

    # The server's runtime is created here and used only on the server thread's loop.
    runtime = build_runtime(settings, database_url)
    server = uvicorn.Server(
        uvicorn.Config(
            create_app(runtime, embedded_worker=True, warm_up=True),
            host=settings.host,
            port=settings.port,
            log_config=None,
            access_log=False,
        )
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        while not server.started:
            time.sleep(0.05)
        base = f"http://{settings.host}:{settings.port}"
        typer.echo(f"Lead Flood listening on {base}; demo buyer on :{DEMO_BUYER_PORT}")

        run = secrets.token_hex(4)
        posted: list[tuple[str, str]] = []
        with httpx.Client(base_url=base, timeout=10) as http:
            for n, (expected, source, body) in enumerate(_scenarios(run)):
                headers = {"Idempotency-Key": f"demo-{run}-{n}"}
                if source == "roofpros":
                    headers["Authorization"] = f"Bearer {roofpros_key}"
                response = http.post(
                    "/api/leads", json={**body, "source_key": source}, headers=headers
                )
                response.raise_for_status()
                posted.append((response.json()["lead_id"], expected))
                time.sleep(0.05)  # keep the duplicate strictly later than its original

        summaries = asyncio.run(_wait_settled(settings, database_url, [p[0] for p in posted]))
        _print_table(posted, summaries)
        asyncio.run(_outreach(settings, database_url))
        if serve:
            typer.echo(
                f"\nServing on {base} (Ctrl-C to stop). Web UI: {base}/login "
                f"as {DEMO_ADMIN_EMAIL} / {DEMO_ADMIN_PASSWORD} (a demo login: change it)."
            )
            # Ctrl-C (or SIGTERM) raises here: wait in short joins, so the main thread
            # wakes to run the signal's handler (one endless join never did).
            signal.signal(signal.SIGINT, signal.default_int_handler)
            with contextlib.suppress(KeyboardInterrupt):
                while thread.is_alive():
                    thread.join(0.5)
    finally:
        # However the demo ends (done, Ctrl-C, SIGTERM): the server's lifespan stops its
        # worker and SMTP sink (whose thread would keep the process alive), then the
        # embedded PostgreSQL this process started is stopped at exit (decision 0002).
        server.should_exit = True
        thread.join(timeout=15)


async def _outreach(settings: Settings, url: str) -> None:
    runtime = build_runtime(settings, url)
    try:
        await run_outreach_demo(runtime)
    finally:
        await runtime.close()


async def _wait_settled(
    settings: Settings, url: str, lead_ids: list[str]
) -> dict[str, LeadSummary]:
    runtime = build_runtime(settings, url)
    ids = [uuid.UUID(i) for i in lead_ids]
    try:
        deadline = time.monotonic() + 30
        while True:
            async with single_statements(runtime.db) as conn:
                rows = await lead_summaries(conn, ids)
            done = all(
                r.status in SETTLED or (r.status == "validated" and r.routing)
                for r in rows.values()
            )
            if done or time.monotonic() > deadline:
                return rows
            await asyncio.sleep(0.2)
    finally:
        await runtime.close()


def _print_table(posted: list[tuple[str, str]], rows: dict[str, LeadSummary]) -> None:
    typer.echo("")
    typer.echo(f"{'lead':<10} {'scenario':<30} {'status':<16} {'buyer':<22} why")
    typer.echo("-" * 110)
    for lead_id, expected in posted:
        r = rows.get(lead_id)
        status = r.status if r else "?"
        why = ""
        if r is None:
            pass
        elif status == "rejected":
            why = ", ".join(r.rejection_reasons or [])
        elif status == "validated":
            why = f"routing: {r.routing}"
        elif r.delivery:
            why = f"delivery {r.delivery} after {r.attempt_count} attempt(s)"
        buyer = (r.buyer if r else None) or "-"
        typer.echo(f"{lead_id[:8]:<10} {expected:<30} {status:<16} {buyer:<22} {why}")
