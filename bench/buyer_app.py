"""A bare buyer endpoint in its own process: answers 200, remembers arrival times.

python bench/buyer_app.py <port>      GET /received -> {lead_id: unix time}
POST /slow answers after SLOW_S seconds (a buyer at or past its timeout; bench/slow_buyer.py).
"""

from __future__ import annotations

import asyncio
import sys
import time

import orjson
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

ARRIVALS: dict[str, float] = {}


async def receive(request: Request) -> Response:
    body = await request.body()
    ARRIVALS[orjson.loads(body)["lead_id"]] = time.time()
    return Response(b'{"accepted":true}', media_type="application/json")


SLOW_S = 30.0


async def slow(request: Request) -> Response:
    await request.body()
    await asyncio.sleep(SLOW_S)
    return Response(b'{"accepted":true}', media_type="application/json")


async def received(request: Request) -> Response:
    return Response(orjson.dumps(ARRIVALS), media_type="application/json")


app = Starlette(
    routes=[
        Route("/leads", receive, methods=["POST"]),
        Route("/slow", slow, methods=["POST"]),
        Route("/received", received),
    ]
)

if __name__ == "__main__":
    uvicorn.run(
        app,
        host="127.0.0.1",
        port=int(sys.argv[1]),
        log_level="warning",
        access_log=False,
        loop="uvloop",
        http="httptools",
    )
