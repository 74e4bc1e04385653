#!/usr/bin/env python3
"""The dependency-vulnerability gate: pip-audit over the project's virtual environment.

pip-audit asks a vulnerability service about every installed distribution. It asks the
live OSV service when that answers; where it does not (this project's CI reaches PyPI only
through a mirror that has no per-release vulnerability data), it asks a local OSV-API
server that answers from `tools/advisories/pypi.json`, a snapshot of the PyPA advisory
database (OSV records) for the distributions we install. Either way a known
vulnerability fails the gate; the output says which source answered and how old it is.

    python3 tools/audit.py                      # the gate (tools/dev.py test runs it)
    python3 tools/audit.py refresh CHECKOUT     # rewrite the snapshot from a checkout of
                                                # github.com/pypa/advisory-database
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import threading
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
SNAPSHOT = ROOT / "tools" / "advisories" / "pypi.json"
LIVE_OSV = "https://api.osv.dev/v1/query"


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def affects(record: dict[str, Any], name: str, version: str) -> bool:
    """OSV's rule for PyPI: a listed version, or inside an ECOSYSTEM range."""
    from packaging.version import InvalidVersion, Version

    try:
        installed = Version(version)
    except InvalidVersion:
        return False
    for affected in record.get("affected", []):
        if canonical(affected.get("package", {}).get("name", "")) != name:
            continue
        if version in affected.get("versions", []):
            return True
        for span in affected.get("ranges", []):
            if span.get("type") != "ECOSYSTEM":
                continue
            # Events come in version order: introduced, fixed, introduced again, …
            inside = False
            for event in span.get("events", []):
                if "introduced" in event:
                    start = event["introduced"]
                    inside = inside or start == "0" or installed >= Version(start)
                elif "fixed" in event:
                    inside = inside and installed < Version(event["fixed"])
                elif "last_affected" in event:
                    inside = inside and installed <= Version(event["last_affected"])
            if inside:
                return True
    return False


class _Handler(BaseHTTPRequestHandler):
    records: dict[str, list[dict[str, Any]]] = {}

    def do_POST(self) -> None:
        query = json.loads(self.rfile.read(int(self.headers.get("Content-Length", "0"))))
        name = canonical(query["package"]["name"])
        found = [r for r in self.records.get(name, []) if affects(r, name, query["version"])]
        body = json.dumps({"vulns": found} if found else {}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


@contextmanager
def snapshot_server(snapshot: Path = SNAPSHOT) -> Iterator[tuple[str, str]]:
    """(OSV query URL, the snapshot's description) of a local server over the snapshot."""
    data = json.loads(snapshot.read_text())
    records: dict[str, list[dict[str, Any]]] = {}
    for record in data["records"]:
        for affected in record.get("affected", []):
            records.setdefault(canonical(affected["package"]["name"]), []).append(record)
    handler = type("SnapshotHandler", (_Handler,), {"records": records})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/v1/query", data["source"]
    finally:
        server.shutdown()
        server.server_close()


def live_osv_answers() -> bool:
    query = json.dumps({"package": {"name": "jinja2", "ecosystem": "PyPI"}, "version": "2.10"})
    request = urllib.request.Request(LIVE_OSV, data=query.encode(), method="POST")
    try:
        with urllib.request.urlopen(request, timeout=5) as answer:  # noqa: S310 - fixed https URL
            return bool(json.loads(answer.read()).get("vulns"))
    except (OSError, ValueError):
        return False


def pip_audit(python: Path, osv_url: str, *extra: str) -> int:
    command = [str(python), "-m", "pip_audit", "--vulnerability-service", "osv"]
    command += ["--osv-url", osv_url, "--progress-spinner", "off", "--desc", "on", *extra]
    return subprocess.run(command, cwd=ROOT).returncode


def gate(python: Path) -> int:
    # The project itself is installed editable and is not on any index: not audited.
    local = ("--local", "--skip-editable")
    if live_osv_answers():
        print("dependency audit: the live OSV service", flush=True)
        return pip_audit(python, LIVE_OSV, *local)
    with snapshot_server() as (url, source):
        print(f"dependency audit: OSV unreachable, the snapshot {source}", flush=True)
        return pip_audit(python, url, *local)


def refresh(checkout: Path, python: Path) -> None:
    """Keep the advisories of every distribution installed in the project's venv."""
    import yaml

    listed = subprocess.run(
        [str(python), "-m", "pip", "list", "--format", "json"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    installed = {canonical(d["name"]) for d in json.loads(listed)}
    records = []
    for folder in sorted((checkout / "vulns").iterdir()):
        if canonical(folder.name) in installed:
            for path in sorted(folder.glob("*.yaml")):
                records.append(yaml.safe_load(path.read_text()))
    commit = subprocess.run(
        ["git", "-C", str(checkout), "log", "-1", "--format=%H %cs"],
        capture_output=True,
        text=True,
    ).stdout.split()
    source = "pypa/advisory-database" + (f" {commit[0][:12]} of {commit[1]}" if commit else "")
    SNAPSHOT.parent.mkdir(exist_ok=True)
    SNAPSHOT.write_text(
        json.dumps({"source": source, "records": records}, indent=1, default=str) + "\n"
    )
    print(f"{len(records)} advisories for {len(installed)} installed distributions: {source}")


def main() -> int:
    python = ROOT / ".venv" / "bin" / "python"
    if sys.argv[1:2] == ["refresh"]:
        refresh(Path(sys.argv[2]), python)
        return 0
    return gate(python)


if __name__ == "__main__":
    sys.exit(main())
