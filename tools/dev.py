#!/usr/bin/env python3
"""Bootstrap and run Lead Flood with nothing but Python 3.11 installed.

    python3 tools/dev.py demo        # install, migrate, seed, run the demo, serve on :8000
    python3 tools/dev.py test        # install, lint, run the whole test suite
    python3 tools/dev.py <leadflood args…>   # any CLI command inside the project venv

Creates `.venv` beside the project on first use and reinstalls only when
pyproject.toml changes.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import tempfile
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
VENV = ROOT / ".venv"
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")


def _python() -> Path:
    return BIN / ("python.exe" if os.name == "nt" else "python")


def ensure_installed() -> None:
    if sys.version_info < (3, 11):  # noqa: UP036 - run by whatever python3 the user has
        sys.exit("Lead Flood needs Python 3.11 or newer")
    if not _python().exists():
        print("creating virtual environment in .venv", flush=True)
        venv.EnvBuilder(with_pip=True).create(VENV)
    stamp = VENV / ".installed"
    digest = hashlib.sha256((ROOT / "pyproject.toml").read_bytes()).hexdigest()
    if stamp.exists() and stamp.read_text() == digest:
        return
    print("installing Lead Flood and its dependencies", flush=True)
    # setuptools too: the one venv seeds for Python 3.11 carries a known vulnerability.
    upgrade = ["install", "-q", "--upgrade", "pip", "setuptools"]
    subprocess.run([str(_python()), "-m", "pip", *upgrade], check=True)
    subprocess.run([str(_python()), "-m", "pip", "install", "-q", "-e", f"{ROOT}[dev]"], check=True)
    stamp.write_text(digest)


def run_tests(extra: list[str]) -> int:
    """The gates, cheapest first: lint, format, types, known vulnerabilities in the
    dependencies, a wheel that builds, then the tests (an OpenAPI document that differs
    from docs/openapi.json fails among them)."""
    for gate in (
        [str(BIN / "ruff"), "check", "."],
        [str(BIN / "ruff"), "format", "--check", "--quiet", "."],
        [str(BIN / "mypy")],  # its scope and settings: [tool.mypy] in pyproject.toml
        [str(_python()), str(ROOT / "tools" / "audit.py")],
    ):
        done = subprocess.run(gate, cwd=ROOT)
        if done.returncode != 0:
            return done.returncode
    with tempfile.TemporaryDirectory() as wheels:
        built = subprocess.run(
            [str(_python()), "-m", "pip", "wheel", "-q", "--no-deps", "-w", wheels, str(ROOT)],
            cwd=ROOT,
        )
        if built.returncode != 0:
            print("the wheel does not build", file=sys.stderr)
            return built.returncode
    # The suite runs under coverage; the floor ([tool.coverage.report] fail_under) holds
    # for the whole suite only, not for a selection of it.
    coverage = [str(_python()), "-m", "coverage"]
    result = subprocess.run([*coverage, "run", "-m", "pytest", *extra], cwd=ROOT)
    if result.returncode == 5:
        print("pytest collected no tests: failing on purpose", file=sys.stderr)
        return 1
    if result.returncode != 0:
        return result.returncode
    selected = any(not a.startswith("-") for a in extra) or {"-k", "-m", "-x"} & set(extra)
    if selected:
        return 0
    return subprocess.run([*coverage, "report"], cwd=ROOT).returncode


def main() -> int:
    args = sys.argv[1:] or ["--help"]
    ensure_installed()
    if args[0] == "test":
        return run_tests(args[1:])
    if args[0] == "openapi":  # accept an API change: rewrite the committed document
        code = "from tests.core.test_openapi_snapshot import write; write()"
        return subprocess.run([str(_python()), "-c", code], cwd=ROOT).returncode
    return subprocess.run([str(BIN / "leadflood"), *args], cwd=ROOT).returncode


if __name__ == "__main__":
    sys.exit(main())
