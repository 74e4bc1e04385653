"""Helpers shared by the outreach tests."""

from __future__ import annotations

from sqlalchemy import text

ICP = {
    "name": "Sales leaders",
    "titles": ["VP of Sales", " vp of sales "],
    "seniorities": ["VP"],
    "locations": ["Texas"],
    "company_sizes": ["51, 200"],
}


async def scalar(runtime, sql: str, **params):
    async with runtime.db.connect() as conn:
        return (await conn.execute(text(sql), params)).scalar()


async def make_jobs_due(runtime) -> None:
    """Fast-forward: every delayed job (a scheduled retry) is due now."""
    async with runtime.db.transaction() as conn:
        await conn.execute(
            text(
                "UPDATE pgqueuer SET execute_after = now() - interval '1 second' "
                "WHERE status = 'queued'"
            )
        )


async def new_icp(client, headers, **overrides) -> str:
    response = await client.post("/v1/icps", json={**ICP, **overrides}, headers=headers)
    assert response.status_code == 201, response.text
    return response.json()["id"]
