"""A real uvicorn server on a free loopback port, for tests that need true concurrency."""

from __future__ import annotations

import socket
import threading
import time

import uvicorn

from leadflood.app import create_app
from leadflood.core.http_server import uvicorn_options
from leadflood.core.runtime import build_runtime
from leadflood.core.settings import Settings


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ThreadedServer:
    """Serve an ASGI app with uvicorn on its own thread and loop, on a free port."""

    def __init__(  # type: ignore[no-untyped-def]
        self, app, *, lifespan: str = "off", options: dict | None = None
    ) -> None:
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(
            app,
            host="127.0.0.1",
            port=self.port,
            lifespan=lifespan,
            loop="asyncio",
            **(options or {"log_config": None, "access_log": False}),
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self):  # type: ignore[no-untyped-def]
        self.thread.start()
        deadline = time.monotonic() + 15
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError(f"{type(self).__name__} did not start")
            time.sleep(0.01)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=15)


class LiveServer(ThreadedServer):
    """The Lead Flood app itself, for tests that need true concurrency over HTTP."""

    def __init__(self, settings: Settings, database_url: str, *, worker: bool = False) -> None:
        runtime = build_runtime(settings, database_url)
        # Served exactly as `leadflood serve` serves (slow-client cut-offs, proxy trust).
        super().__init__(
            create_app(runtime, embedded_worker=worker),
            lifespan="on",
            options=uvicorn_options(settings),
        )
        self.url = self.base
