"""The app's API routes as (full path, route), through FastAPI's included routers (whose
wrappers `app.routes` lists instead of the routes themselves)."""

from __future__ import annotations

from typing import Any

from fastapi.routing import APIRoute


def api_routes(app: Any) -> list[tuple[str, APIRoute]]:
    found: list[tuple[str, APIRoute]] = []

    def walk(routes: list[Any], prefix: str) -> None:
        for route in routes:
            if isinstance(route, APIRoute):
                found.append((prefix + route.path, route))
            elif hasattr(route, "original_router"):
                context = getattr(route, "include_context", None)
                walk(route.original_router.routes, prefix + (context.prefix if context else ""))

    walk(app.routes, "")
    return found
