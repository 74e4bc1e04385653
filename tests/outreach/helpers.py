"""Helpers shared by the outreach tests."""

from __future__ import annotations

from leadflood.core.uow import single_statements, unit_of_work
from tests.sql import run

ICP = {
    "name": "Sales leaders",
    "titles": ["VP of Sales", " vp of sales "],
    "seniorities": ["VP"],
    "locations": ["Texas"],
    "company_sizes": ["51, 200"],
}


async def scalar(runtime, sql: str, **params):
    async with single_statements(runtime.db) as conn:
        return (await run(conn, sql, params)).scalar()


async def make_jobs_due(runtime) -> None:
    """Fast-forward: every delayed job (a scheduled retry) is due now."""
    async with unit_of_work(runtime.db) as conn:
        await run(
            conn,
            "UPDATE pgqueuer SET execute_after = now() - interval '1 second' "
            "WHERE status = 'queued'",
        )


async def new_icp(client, headers, **overrides) -> str:
    response = await client.post("/v1/icps", json={**ICP, **overrides}, headers=headers)
    assert response.status_code == 201, response.text
    return response.json()["id"]


async def start_search(client, headers, icp_id, **body) -> dict:
    """POST an ICP's search (Apollo unless told) and return its answer."""
    body = {"provider": "apollo", **body}
    response = await client.post(f"/v1/icps/{icp_id}/search", json=body, headers=headers)
    assert response.status_code == 202, response.text
    return response.json()


async def job_state(client, headers, job_id) -> dict:
    return (await client.get(f"/v1/jobs/{job_id}", headers=headers)).json()
