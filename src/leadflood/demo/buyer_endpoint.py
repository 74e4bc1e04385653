"""A local demo buyer: accepts signed webhook posts and remembers what arrived."""

from __future__ import annotations

import threading

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

RECEIVED: list[dict] = []


async def receive(request: Request) -> JSONResponse:
    body = await request.body()
    RECEIVED.append(
        {
            "buyer": request.path_params["n"],
            "bytes": len(body),
            "signature": request.headers.get("x-leadflood-signature", "")[:20],
        }
    )
    return JSONResponse({"accepted": True})


async def listing(request: Request) -> JSONResponse:
    return JSONResponse(RECEIVED)


def start_demo_buyer(port: int) -> uvicorn.Server:
    app = Starlette(
        routes=[Route("/buyers/{n}/leads", receive, methods=["POST"]), Route("/received", listing)]
    )
    server = uvicorn.Server(
        uvicorn.Config(
            app, host="127.0.0.1", port=port, log_config=None, access_log=False, lifespan="off"
        )
    )
    threading.Thread(target=server.run, daemon=True).start()
    return server
