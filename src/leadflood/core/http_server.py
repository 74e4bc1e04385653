"""How uvicorn serves Lead Flood: slow-client cut-offs and which proxies are trusted.

uvicorn has a keep-alive timeout but none for a request's headers: a client trickling
one header byte every few seconds holds its connection forever (slowloris). The
protocol below closes a connection whose request headers take longer than
`header_timeout_s` (a 408 first); the body's deadline is `RequestGuard`'s.
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from leadflood.core.settings import Settings

_TIMEOUT_RESPONSE = (
    b"HTTP/1.1 408 Request Timeout\r\ncontent-type: application/json\r\n"
    b"connection: close\r\ncontent-length: 84\r\n\r\n"
    b'{"error":{"code":"request_timeout","message":"request headers too slow","details":{}}}'
)


class GuardedHttpToolsProtocol(HttpToolsProtocol):
    header_timeout_s: float = 10.0

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._header_timer: asyncio.TimerHandle | None = None
        self._arm_header_timer()

    def on_message_begin(self) -> None:
        super().on_message_begin()
        if self._header_timer is None:
            self._arm_header_timer()

    def on_headers_complete(self) -> None:
        self._disarm_header_timer()
        super().on_headers_complete()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm_header_timer()
        super().connection_lost(exc)

    def on_response_complete(self) -> None:
        super().on_response_complete()
        # The next request's headers get their own deadline from its first byte; until
        # then the keep-alive timeout governs the idle connection.
        self._disarm_header_timer()

    def _arm_header_timer(self) -> None:
        self._header_timer = self.loop.call_later(self.header_timeout_s, self._headers_too_slow)

    def _disarm_header_timer(self) -> None:
        timer = getattr(self, "_header_timer", None)
        if timer is not None:
            timer.cancel()
            self._header_timer = None

    def _headers_too_slow(self) -> None:
        self._header_timer = None
        if not self.transport.is_closing():
            self.transport.write(_TIMEOUT_RESPONSE)
            self.transport.close()


def protocol_for(settings: Settings) -> type[GuardedHttpToolsProtocol]:
    return type(
        "LeadfloodHttpProtocol",
        (GuardedHttpToolsProtocol,),
        {"header_timeout_s": settings.request_header_timeout_s},
    )


def uvicorn_options(settings: Settings) -> dict[str, Any]:
    """Options every Lead Flood server passes to uvicorn (`serve` and the test servers)."""
    trusted = settings.trusted_proxies
    return {
        "http": protocol_for(settings),
        "timeout_keep_alive": 5,
        # X-Forwarded-For / -Proto are believed only from the configured proxies (by
        # default none): otherwise any client could pick its address, and with it its
        # rate-limit bucket.
        "proxy_headers": bool(trusted),
        "forwarded_allow_ips": ",".join(trusted) if trusted else None,
        "log_config": None,
        "access_log": False,
    }


class ConfiguredHttpProtocol(GuardedHttpToolsProtocol):
    """The same protocol named by import path, for `serve --processes N`: each process
    uvicorn spawns imports it and reads its header timeout from its own settings (a class
    made at runtime cannot be handed to a spawned process)."""

    _configured = False

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        if not ConfiguredHttpProtocol._configured:
            from leadflood.core.settings import get_settings

            ConfiguredHttpProtocol.header_timeout_s = get_settings().request_header_timeout_s
            ConfiguredHttpProtocol._configured = True
        super().connection_made(transport)
