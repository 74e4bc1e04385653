"""The dependency-vulnerability gate (tools/audit.py) fails on a known vulnerability: pip-audit
asks the local OSV-API server over the committed advisory snapshot, as CI does when the live
OSV service is out of reach."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _audit() -> ModuleType:
    spec = importlib.util.spec_from_file_location("lf_audit", ROOT / "tools" / "audit.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


audit = _audit()


def _pip_audit(url: str, requirements: Path) -> subprocess.CompletedProcess[str]:
    service = ["--vulnerability-service", "osv", "--osv-url", url, "--progress-spinner", "off"]
    offline = ["--disable-pip", "--no-deps", "-r", str(requirements)]
    return subprocess.run(
        [sys.executable, "-m", "pip_audit", *service, *offline],
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_osv_ranges_are_read_as_osv_defines_them() -> None:
    record = {
        "affected": [
            {
                "package": {"name": "Some_Lib", "ecosystem": "PyPI"},
                "ranges": [
                    {
                        "type": "ECOSYSTEM",
                        "events": [
                            {"introduced": "1.0"},
                            {"fixed": "1.5"},
                            {"introduced": "2.0"},
                            {"fixed": "2.3"},
                        ],
                    }
                ],
                "versions": ["0.9.1"],
            }
        ]
    }
    seen = {v: audit.affects(record, "some-lib", v) for v in ("0.9", "0.9.1", "1.2", "1.7", "2.1")}
    assert seen == {"0.9": False, "0.9.1": True, "1.2": True, "1.7": False, "2.1": True}
    assert not audit.affects(record, "some-lib", "2.3")
    assert not audit.affects(record, "other", "1.2")
    assert not audit.affects(record, "some-lib", "not a version")


def test_a_vulnerable_pin_fails_the_gate_and_the_installed_set_passes(tmp_path: Path) -> None:
    vulnerable = tmp_path / "vulnerable.txt"
    vulnerable.write_text("jinja2==2.10\n")  # CVE-2019-10906, fixed in 2.10.1
    current = tmp_path / "current.txt"
    current.write_text(f"jinja2=={version('jinja2')}\naiohttp=={version('aiohttp')}\n")
    with audit.snapshot_server() as (url, source):
        assert "pypa/advisory-database" in source
        failed = _pip_audit(url, vulnerable)
        passed = _pip_audit(url, current)
    assert failed.returncode == 1, failed.stdout + failed.stderr
    assert "PYSEC-2019-217" in failed.stdout
    assert passed.returncode == 0, passed.stdout + passed.stderr
    assert "No known vulnerabilities found" in passed.stdout + passed.stderr


@pytest.mark.parametrize("name", ["jinja2", "aiohttp", "cryptography", "starlette", "urllib3"])
def test_the_snapshot_covers_the_dependencies_that_had_advisories(name: str) -> None:
    import json

    records = json.loads(audit.SNAPSHOT.read_text())["records"]
    assert any(
        audit.canonical(a["package"]["name"]) == name for r in records for a in r["affected"]
    )
