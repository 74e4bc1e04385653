"""Ctrl-C and SIGTERM stop `serve` and `demo` and the embedded PostgreSQL they started
(decision 0002): nothing is left running."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.live import free_port


def _postmaster_alive(data_dir: Path) -> bool:
    pid_file = data_dir / "pg" / "postmaster.pid"
    if not pid_file.exists():
        return False
    pid = int(pid_file.read_text().split()[0])
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def _start(command: str, data_dir: Path, port: int, ready: str) -> subprocess.Popen:
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": os.environ.get("HOME", "/root"),
        "LEADFLOOD_DATA_DIR": str(data_dir),
        "LEADFLOOD_PORT": str(port),
        "LEADFLOOD_LOG_JSON": "true",
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "leadflood.cli", command],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
    )
    deadline = time.monotonic() + 120
    assert process.stdout is not None
    for line in process.stdout:
        if ready in line:
            return process
        if time.monotonic() > deadline:
            break
    process.kill()
    raise AssertionError(f"{command} did not start")


@pytest.mark.parametrize(
    ("command", "ready", "sig"),
    [
        ("serve", "listening on", signal.SIGTERM),
        ("demo", "Ctrl-C to stop", signal.SIGINT),
        ("demo", "Ctrl-C to stop", signal.SIGTERM),
    ],
)
def test_a_signal_stops_the_command_and_its_embedded_postgres(
    tmp_path, command, ready, sig
) -> None:
    process = _start(command, tmp_path, free_port(), ready)
    assert _postmaster_alive(tmp_path)
    process.send_signal(sig)
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        raise AssertionError(f"{command} kept running after {sig.name}") from None
    deadline = time.monotonic() + 15
    while _postmaster_alive(tmp_path) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not _postmaster_alive(tmp_path), "the embedded PostgreSQL was left running"
