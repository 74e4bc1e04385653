"""The floor: a bare FastAPI + asyncpg endpoint doing one INSERT per request.

python bench/floor_app.py <database_url> <port>
"""

from __future__ import annotations

import sys

import asyncpg
import orjson
import uvicorn
from fastapi import FastAPI, Request
from starlette.responses import Response

DATABASE_URL, PORT = sys.argv[1], int(sys.argv[2])
app = FastAPI()
state: dict[str, asyncpg.Pool] = {}


@app.on_event("startup")
async def startup() -> None:
    state["pool"] = await asyncpg.create_pool(DATABASE_URL, min_size=10, max_size=20)
    await state["pool"].execute(
        "CREATE TABLE IF NOT EXISTS bench_floor "
        "(id uuid PRIMARY KEY DEFAULT gen_random_uuid(), payload jsonb NOT NULL)"
    )


@app.post("/api/leads")
async def insert(request: Request) -> Response:
    body = await request.body()
    lead_id = await state["pool"].fetchval(
        "INSERT INTO bench_floor (payload) VALUES ($1::jsonb) RETURNING id", body.decode()
    )
    return Response(
        orjson.dumps({"lead_id": str(lead_id)}), status_code=201, media_type="application/json"
    )


if __name__ == "__main__":
    uvicorn.run(
        app,
        host="127.0.0.1",
        port=PORT,
        log_level="warning",
        loop="uvloop",
        http="httptools",
        access_log=False,
    )
