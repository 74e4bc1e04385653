"""A lean HTTP/1.1 keep-alive load generator (asyncio streams).

httpx costs ~1 ms of CPU per request, which on a 2-core machine would be
measured as server latency; raw streams keep the client's share small.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable


class Connection:
    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def open(self) -> None:
        self.reader, self.writer = await asyncio.open_connection(self.host, self.port)

    async def post(
        self, path: str, body: bytes, headers: dict[str, str] | None = None
    ) -> tuple[int, bytes]:
        assert self.reader and self.writer
        extra = "".join(f"{k}: {v}\r\n" for k, v in (headers or {}).items())
        head = (
            f"POST {path} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n{extra}\r\n"
        )
        self.writer.write(head.encode() + body)
        status_line = await self.reader.readline()
        status = int(status_line.split()[1])
        length = 0
        while True:
            line = await self.reader.readline()
            if line in (b"\r\n", b""):
                break
            name, _, value = line.decode().partition(":")
            if name.lower() == "content-length":
                length = int(value.strip())
        payload = await self.reader.readexactly(length) if length else b""
        return status, payload

    async def close(self) -> None:
        if self.writer:
            self.writer.close()


async def sequential(
    host: str, port: int, path: str, make_body: Callable[[int], bytes], n: int
) -> tuple[list[float], float, int]:
    conn = Connection(host, port)
    await conn.open()
    samples: list[float] = []
    errors = 0
    started = time.perf_counter()
    for i in range(n):
        t0 = time.perf_counter()
        status, _ = await conn.post(path, make_body(i))
        samples.append((time.perf_counter() - t0) * 1000)
        errors += status >= 300
    wall = time.perf_counter() - started
    await conn.close()
    return samples, wall, errors


async def open_loop(
    host: str,
    port: int,
    path: str,
    make_body: Callable[[int], bytes],
    rate: float,
    seconds: float,
    connections: int = 64,
) -> tuple[list[float], float, int]:
    """Fire requests on a fixed schedule (no coordinated omission): latency counts
    from the scheduled send time, so a slow server cannot hide behind a slow client."""
    pool: asyncio.Queue[Connection] = asyncio.Queue()
    for _ in range(connections):
        c = Connection(host, port)
        await c.open()
        pool.put_nowait(c)
    samples: list[float] = []
    errors = 0
    total = int(rate * seconds)
    started = time.perf_counter()

    async def one(i: int, scheduled: float) -> None:
        nonlocal errors
        conn = await pool.get()
        try:
            status, _ = await conn.post(path, make_body(i))
            errors += status >= 300
        finally:
            pool.put_nowait(conn)
        samples.append((time.perf_counter() - scheduled) * 1000)

    tasks = []
    for i in range(total):
        scheduled = started + i / rate
        delay = scheduled - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(i, scheduled)))
    await asyncio.gather(*tasks)
    wall = time.perf_counter() - started
    while not pool.empty():
        await pool.get_nowait().close()
    return samples, wall, errors


async def closed_loop(
    host: str,
    port: int,
    path: str,
    make_body: Callable[[int], bytes],
    concurrency: int,
    seconds: float,
) -> tuple[list[float], float, int]:
    """As fast as the server answers, `concurrency` requests in flight: max throughput."""
    samples: list[float] = []
    errors = 0
    counter = iter(range(10**9))
    deadline = time.perf_counter() + seconds
    started = time.perf_counter()

    async def worker() -> None:
        nonlocal errors
        conn = Connection(host, port)
        await conn.open()
        while time.perf_counter() < deadline:
            t0 = time.perf_counter()
            status, _ = await conn.post(path, make_body(next(counter)))
            samples.append((time.perf_counter() - t0) * 1000)
            errors += status >= 300
        await conn.close()

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return samples, time.perf_counter() - started, errors
