"""Scaling out: `serve --processes 2` answers on one port from two processes, and two
`leadflood worker` processes against one database deliver every lead exactly once."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time

import httpx

from leadflood.core import migrate
from leadflood.core.db import Database
from leadflood.core.uow import unit_of_work
from tests.buyer_server import BuyerServer
from tests.factories import make_buyer, make_world
from tests.live import free_port
from tests.pg import recreate_database, server_url


def _env(url: str, **extra: str) -> dict[str, str]:
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "LEADFLOOD_DATABASE_URL": url,
        "LEADFLOOD_ENV": "test",
        "LEADFLOOD_LOG_JSON": "true",
        **extra,
    }


def _start(args: list[str], url: str, *, capture: bool = False) -> subprocess.Popen:
    out = subprocess.PIPE if capture else subprocess.DEVNULL
    return subprocess.Popen(args, env=_env(url), stdout=out, stderr=subprocess.STDOUT, text=True)


def _children(pid: int) -> list[int]:
    out = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True)  # noqa: S607
    return [int(p) for p in out.stdout.split()]


async def test_two_http_processes_and_two_workers_deliver_each_lead_once() -> None:
    url = await asyncio.to_thread(recreate_database, server_url(), "leadflood_scale_out")
    await asyncio.to_thread(migrate.upgrade, url)
    with BuyerServer() as buyers:
        db = Database(url, pool_size=2)
        async with unit_of_work(db) as conn:
            world = await make_world(conn)
            await make_buyer(conn, world, webhook_url=buyers.url())
        await db.dispose()
        port = free_port()
        cli = [sys.executable, "-m", "leadflood.cli"]
        serve = _start([*cli, "serve", "--processes", "2", "--no-worker", "--port", str(port)], url)
        workers = [_start([*cli, "worker"], url, capture=True) for _ in range(2)]
        try:
            base = f"http://127.0.0.1:{port}"
            async with httpx.AsyncClient(base_url=base, timeout=10) as http:
                for _ in range(100):
                    try:
                        if (await http.get("/health")).status_code == 200:
                            break
                    except httpx.TransportError:
                        await asyncio.sleep(0.2)
                assert len([p for p in _children(serve.pid) if p]) >= 2
                posts = await asyncio.gather(
                    *(
                        http.post(
                            "/api/leads",
                            json={
                                "source_id": str(world.source_id),
                                "first_name": "Ana",
                                "phone": f"602-253-{n:04d}",
                                "postal_code": "85001",
                                "consent": True,
                            },
                        )
                        for n in range(40)
                    )
                )
            assert [p.status_code for p in posts] == [201] * 40
            deadline = time.monotonic() + 60
            while buyers.count() < 40 and time.monotonic() < deadline:
                await asyncio.sleep(0.2)
            await asyncio.sleep(1)  # nothing more arrives: no lead twice
            delivered = [r.headers["idempotency-key"] for r in buyers.received]
            assert len(delivered) == 40 and len(set(delivered)) == 40
        finally:
            for process in (serve, *workers):
                process.terminate()
            logs = [w.communicate(timeout=30)[0] for w in workers]
            serve.wait(timeout=30)
    # Each attempt was made once, by one of the two workers (whichever was free).
    attempts = sum(log.count('"event": "delivery_attempt"') for log in logs)
    assert attempts == 40, [log[-500:] for log in logs]
