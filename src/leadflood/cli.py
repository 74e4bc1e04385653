"""`leadflood` command line: serve, worker, migrate, demo (and domain commands)."""

from __future__ import annotations

import asyncio
import re
import signal
import sys
import time
from collections.abc import Awaitable, Callable, Coroutine
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import asyncpg
import typer
from pydantic import ValidationError

from leadflood.core.logging import cache_loggers, configure_logging
from leadflood.core.settings import Settings, get_settings
from leadflood.core.uow import Tx, unit_of_work

if TYPE_CHECKING:
    from leadflood.core.runtime import Runtime

T = TypeVar("T")

app = typer.Typer(help="Lead Flood: lead distribution and outreach.", no_args_is_help=True)


def _settings() -> Settings:
    try:
        settings = get_settings()
    except ValidationError as exc:
        # Name the setting and the problem, never the value (it may be a secret).
        for error in exc.errors():
            where = ".".join(str(p) for p in error["loc"]) or "configuration"
            typer.echo(f"error: {where}: {error['msg']}", err=True)
        raise typer.Exit(2) from None
    # The command this process runs (serve, worker, demo, …) names its log lines.
    command = next((a for a in sys.argv[1:] if not a.startswith("-")), "")
    service = f"leadflood-{command}" if command.isidentifier() else "leadflood"
    configure_logging(
        settings.log_level, settings.log_json, service=service, env=settings.env.value
    )
    return settings


def _run_service_loop(main: Coroutine[Any, Any, None]) -> None:
    """Long-running processes use uvloop, as `serve` does through uvicorn."""
    try:
        import uvloop
    except ImportError:  # Windows
        asyncio.run(main)
    else:
        uvloop.run(main)


def _in_unit_of_work(work: Callable[[Tx], Awaitable[T]]) -> T:
    """One command's work in one unit of work (the CLI is a boundary)."""

    async def run(runtime: Runtime) -> T:
        async with unit_of_work(runtime.db) as tx:
            return await work(tx)

    return _with_runtime(run)


def _with_runtime(work: Callable[[Runtime], Awaitable[T]]) -> T:
    """Run one operation against the configured database, then close it.

    A domain error (AppError) is printed as `error: <code>: <message>` with exit code 2.
    """
    from leadflood.core.errors import AppError
    from leadflood.core.runtime import build_runtime

    runtime = build_runtime(_settings())

    async def run() -> T:
        try:
            return await work(runtime)
        finally:
            await runtime.close()

    try:
        return asyncio.run(run())
    except AppError as exc:
        typer.echo(f"error: {exc.code}: {exc.message}", err=True)
        raise typer.Exit(2) from None


def _database_url(settings: Settings) -> str:
    from leadflood.core.runtime import resolve_database_url

    return resolve_database_url(settings)


def _owner_url(settings: Settings) -> str:
    """The schema owner's URL for changing the schema: LEADFLOOD_MIGRATION_DATABASE_URL
    when the app's own role cannot (docs/runbooks, README "Database roles")."""
    return settings.migration_database_url or _database_url(settings)


@app.command()
def migrate(
    to: str = typer.Option("head", "--to", help="A revision (e.g. 0012) to up- or downgrade to."),
) -> None:
    """Apply the database migrations (a no-op when up to date); `--to` moves to a given
    revision, down as well as up (docs/runbooks/upgrade-and-rollback.md)."""
    from leadflood.core import migrate as migrations

    url = _owner_url(_settings())
    started = time.perf_counter()
    if to == "head":
        migrations.upgrade(url)
        typer.echo(f"migrations applied in {time.perf_counter() - started:.2f}s")
        return
    if not re.fullmatch(r"\d{4}", to):
        typer.echo("error: invalid_revision: a revision is four digits, e.g. 0012", err=True)
        raise typer.Exit(2)
    way = migrations.move_to(url, to)
    typer.echo(f"{way} to {to} in {time.perf_counter() - started:.2f}s")


@app.command()
def serve(
    host: str | None = typer.Option(None, help="Bind address (default LEADFLOOD_HOST)."),
    port: int | None = typer.Option(None, help="Port (default LEADFLOOD_PORT)."),
    worker: bool = typer.Option(True, help="Run an embedded job worker in the server."),
    migrate_first: bool = typer.Option(True, "--migrate/--no-migrate"),
    processes: int = typer.Option(1, min=1, max=64, help="HTTP processes on the one port."),
) -> None:
    """Serve the API and web UI on one port."""
    from leadflood.core.checks import configuration_problems

    settings = _settings()
    # The same checks as `leadflood check`, said loudly at start; serving goes on (what
    # cannot run safely is refused when the settings load, e.g. a weak secret key).
    for problem in configuration_problems(settings):
        typer.echo(f"warning: {problem}", err=True)
    url = _database_url(settings)
    if migrate_first:
        from leadflood.core import migrate as migrations

        migrations.upgrade(url)
    if processes > 1:
        _serve_processes(settings, url, host, port, worker, processes)
        return
    _serve(settings, url, host, port, worker)


def _serve_processes(
    settings: Settings, url: str, host: str | None, port: int | None, worker: bool, n: int
) -> None:
    """N uvicorn processes on one socket, each with its own runtime (pool of
    db_pool_size, source cache kept fresh by NOTIFY, embedded worker when on). The
    per-client rate limit is per process, so each enforces its share."""
    import math
    import os

    import uvicorn

    from leadflood.core.http_server import uvicorn_options

    os.environ["LEADFLOOD_DATABASE_URL"] = url  # an embedded server started here: shared
    os.environ["LEADFLOOD_EMBEDDED_WORKER"] = "true" if worker else "false"
    limit = settings.api_rate_limit_per_minute
    os.environ["LEADFLOOD_API_RATE_LIMIT_PER_MINUTE"] = str(math.ceil(limit / n) if limit else 0)
    options = {
        **uvicorn_options(settings),
        "http": "leadflood.core.http_server:ConfiguredHttpProtocol",
    }
    bound = f"http://{host or settings.host}:{port or settings.port}"
    typer.echo(f"Lead Flood listening on {bound} ({n} processes)")
    uvicorn.run(
        "leadflood.app:app_from_environment",
        factory=True,
        workers=n,
        host=host or settings.host,
        port=port or settings.port,
        loop="uvloop",
        **options,
    )


def _serve(settings: Settings, url: str, host: str | None, port: int | None, worker: bool) -> None:
    import uvicorn

    from leadflood.app import create_app
    from leadflood.core.http_server import uvicorn_options
    from leadflood.core.runtime import build_runtime

    cache_loggers()
    runtime = build_runtime(settings, url)
    application = create_app(runtime, embedded_worker=worker, warm_up=True)
    typer.echo(f"Lead Flood listening on http://{host or settings.host}:{port or settings.port}")
    uvicorn.run(
        application,
        host=host or settings.host,
        port=port or settings.port,
        loop="uvloop",
        **uvicorn_options(settings),
    )


@app.command()
def check() -> None:
    """Is this configuration fit to take traffic? Each problem with the setting to
    change; exits 1 when there is any (a weak secret key in production: 2)."""
    from leadflood.core import migrate as migrations
    from leadflood.core.checks import configuration_problems, environment_problems

    settings = _settings()
    problems = configuration_problems(settings)
    url = _database_url(settings)
    problems += asyncio.run(environment_problems(settings, url, migrations.head()))
    for problem in problems:
        typer.echo(f"problem: {problem}", err=True)
    if problems:
        raise typer.Exit(1)
    typer.echo(f"ok: {settings.env.value} configuration, database at {migrations.head()}")


@app.command()
def backup(
    to: Path | None = typer.Option(
        None, "--to", help="Directory (default LEADFLOOD_BACKUP_DIR, else DATA_DIR/backups)."
    ),
    keep: int = typer.Option(0, help="Keep only the newest N backups there (0: all)."),
) -> None:
    """Dump the database (embedded or DATABASE_URL) with pg_dump, verified, with a
    manifest of row counts beside it."""
    from leadflood.core import backup as backups

    settings = _settings()
    url = _database_url(settings)
    directory = to or settings.backup_directory
    try:
        path = asyncio.run(backups.backup(url, directory))
    except backups.BackupError as exc:
        typer.echo(f"error: backup_failed: {exc}", err=True)
        raise typer.Exit(1) from None
    removed = backups.prune(directory, keep) if keep else []
    typer.echo(f"backup written: {path} ({path.stat().st_size} bytes), verified")
    for old in removed:
        typer.echo(f"removed (retention {keep}): {old.name}")


@app.command()
def restore(
    file: Path = typer.Argument(..., help="A .dump written by `leadflood backup`."),
    yes: bool = typer.Option(False, "--yes", help="Do not ask for confirmation."),
) -> None:
    """Replace the database's contents with a backup (all or nothing), then check the
    row counts and the leads checksum against its manifest. Stop serve and workers
    first."""
    from leadflood.core import backup as backups

    settings = _settings()
    url = _database_url(settings)
    if not yes:
        typer.confirm(f"Replace everything in the database with {file.name}?", abort=True)
    try:
        result = asyncio.run(backups.restore(url, file))
    except backups.BackupError as exc:
        typer.echo(f"error: restore_failed: {exc}", err=True)
        raise typer.Exit(1) from None
    leads = result.tables.get("public.leads", 0)
    typer.echo(f"restored {file.name}: {len(result.tables)} tables, {leads} leads, verified")


@app.command()
def worker(
    concurrency: int = typer.Option(None, help="Jobs processed at once (default from settings)."),
) -> None:
    """Run a background job worker until interrupted."""
    from leadflood.core.jobs import run_worker
    from leadflood.core.runtime import build_runtime

    settings = _settings()
    cache_loggers()
    runtime = build_runtime(settings)

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        slots = concurrency or settings.worker_concurrency
        try:
            await runtime.db.warm_up(min(slots, settings.db_pool_size))
            await run_worker(runtime, concurrency=slots, stop=stop)
        finally:
            await runtime.close()

    _run_service_loop(main())


@app.command()
def demo(
    serve_after: bool = typer.Option(True, "--serve/--no-serve", help="Serve after seeding."),
    host: str | None = typer.Option(None),
    port: int | None = typer.Option(None),
) -> None:
    """Migrate, seed a demo configuration, run the demo pipeline, then serve."""
    from leadflood.core import migrate as migrations
    from leadflood.demo.run import run_demo

    settings = _settings()
    if host or port:
        settings = settings.model_copy(
            update={k: v for k, v in (("host", host), ("port", port)) if v}
        )
    url = _database_url(settings)
    migrations.upgrade(url)
    run_demo(settings, url, serve=serve_after)


@app.command()
def route(
    retry_unrouted: bool = typer.Option(
        False, "--retry-unrouted", help="Re-route every lead still waiting in `validated`."
    ),
    limit: int = typer.Option(1000, help="At most this many leads."),
) -> None:
    """Routing operations."""
    if not retry_unrouted:
        raise typer.BadParameter("nothing to do: pass --retry-unrouted")
    from leadflood.routing.tasks import Router

    outcomes = _with_runtime(lambda runtime: Router(runtime.db).retry_unrouted(limit))
    typer.echo(f"re-routed {sum(outcomes.values())} lead(s)")
    for outcome, count in sorted(outcomes.items()):
        typer.echo(f"  {outcome:<32} {count}")


billing_app = typer.Typer(help="Billing: postpaid invoices.")
app.add_typer(billing_app, name="billing")


@billing_app.command("invoice")
def billing_invoice(
    period: str = typer.Option(..., help="The month to invoice, YYYY-MM."),
) -> None:
    """Invoice every postpaid buyer for the month; re-running adds nothing twice."""
    from leadflood.billing.service import invoice_period

    results = _in_unit_of_work(lambda tx: invoice_period(tx, period))
    if not results:
        typer.echo(f"{period}: nothing to invoice")
    for r in results:
        typer.echo(
            f"{period}: invoice {r['invoice_id']} buyer {r['buyer_id']} {r['status']}: "
            f"{r.get('lines', 0)} line(s), {r.get('total_cents', 0)} cents (+{r['added']} new)"
        )


db_app = typer.Typer(help="Database roles.")
app.add_typer(db_app, name="db")


@db_app.command("grant-app")
def db_grant_app(
    role: str = typer.Argument(..., help="The role the app connects as (it must exist)."),
) -> None:
    """Grant the app's role what it needs and nothing more (rows, not the schema). Run as
    the schema's owner: LEADFLOOD_MIGRATION_DATABASE_URL, else LEADFLOOD_DATABASE_URL."""
    from leadflood.core.roles import grant_app_role

    url = _owner_url(_settings())
    try:
        count = asyncio.run(grant_app_role(url, role))
    except (ValueError, asyncpg.PostgresError) as exc:
        typer.echo(f"error: grant_failed: {exc}", err=True)
        raise typer.Exit(2) from None
    typer.echo(f"granted {role}: {count} statements (rows read and written; no schema changes)")


jobs_app = typer.Typer(help="Background jobs: dead letters and their replay.")
app.add_typer(jobs_app, name="jobs")


@jobs_app.command("list")
def jobs_list(limit: int = typer.Option(50, help="At most this many.")) -> None:
    """Jobs that failed for good (dead letters), newest first."""
    from leadflood.jobs.dead_letters import list_dead_letters

    letters = _in_unit_of_work(lambda tx: list_dead_letters(tx, limit))
    if not letters:
        typer.echo("no failed jobs")
    for letter in letters:
        typer.echo(
            f"{letter.id:<38} {letter.type:<16} attempts={letter.attempts:<3} "
            f"{(letter.error or '')[:100]}"
        )


@jobs_app.command("replay")
def jobs_replay(job_id: str = typer.Argument(..., help="Id from `leadflood jobs list`.")) -> None:
    """Run a failed job again, after its cause is fixed."""
    from leadflood.jobs.dead_letters import NotReplayable, replay

    try:
        typer.echo(_in_unit_of_work(lambda tx: replay(tx, job_id)))
    except NotReplayable as exc:
        typer.echo(f"error: not_replayable: {exc}", err=True)
        raise typer.Exit(2) from None


users_app = typer.Typer(help="Manage users (the first admin is created here).")
app.add_typer(users_app, name="users")


@users_app.command("create")
def users_create(
    email: str = typer.Option(..., help="Login email."),
    role: str = typer.Option("admin", help="admin, manager or agent."),
    name: str = typer.Option("", help="Display name."),
    password: str = typer.Option(
        ...,
        prompt=True,
        hide_input=True,
        confirmation_prompt=True,
        envvar="LEADFLOOD_NEW_USER_PASSWORD",
        help="Prompted for when not given (or read from LEADFLOOD_NEW_USER_PASSWORD).",
    ),
) -> None:
    """Create a user. The password is hashed with Argon2id and never printed."""
    from leadflood.auth.repository import User
    from leadflood.auth.service import create_user

    async def create(tx: Tx) -> User:
        user = await create_user(tx, email=email, password=password, role=role, name=name)
        await tx.audit(
            None, "create", "user", user.id, {"email": user.email, "role": role, "via": "cli"}
        )
        return user

    user = _in_unit_of_work(create)
    typer.echo(f"created {user.role} {user.email} ({user.id})")


def _terminated(signum: int, frame: object) -> None:
    """SIGTERM ends a command as Ctrl-C does: its cleanup runs (the embedded PostgreSQL
    it started is stopped at exit). `serve` and `worker` install their own graceful
    handlers while they run."""
    raise KeyboardInterrupt


def main() -> None:
    signal.signal(signal.SIGTERM, _terminated)
    app()


if __name__ == "__main__":
    main()
