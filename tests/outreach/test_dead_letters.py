"""Dead letters: failed jobs are listed and replayed once the cause is fixed."""

from __future__ import annotations

import pytest
from pydantic import SecretStr
from typer.testing import CliRunner

from leadflood.core.jobs import JobContext, job
from leadflood.core.retry import NO_RETRY
from leadflood.core.uow import unit_of_work
from leadflood.jobs.dead_letters import NotReplayable, list_dead_letters, replay
from tests.conftest import drain_jobs
from tests.outreach.helpers import job_state, new_icp, start_search

FLAKY = {"broken": True, "runs": 0}


@job("test_flaky_pipeline_job", retry=NO_RETRY)
async def flaky(ctx: JobContext) -> None:
    FLAKY["runs"] += 1
    if FLAKY["broken"]:
        raise RuntimeError("downstream is down")


async def _in_unit(runtime, work, *args):
    async with unit_of_work(runtime.db) as tx:
        return await work(tx, *args)


async def test_failed_search_is_replayed_after_the_key_is_fixed(
    client, runtime, manager, fakes
) -> None:
    runtime.settings.apollo_api_key = SecretStr("revoked-key")
    icp_id = await new_icp(client, manager)
    started = await start_search(client, manager, icp_id)
    await drain_jobs(runtime)
    letters = await _in_unit(runtime, list_dead_letters)
    assert [(d.id, d.type) for d in letters] == [(str(started["job_id"]), "icp.search.run")]

    runtime.settings.apollo_api_key = SecretStr("apollo-test-key")
    message = await _in_unit(runtime, replay, str(started["job_id"]))
    assert "new round" in message
    run = (
        await client.get(f"/v1/icps/{icp_id}/search-runs/{started['run_id']}", headers=manager)
    ).json()
    assert run["status"] == "queued" and run["error"] is None
    await drain_jobs(runtime)
    job = await job_state(client, manager, started["job_id"])
    assert job["status"] == "completed" and job["attempts"] == 1
    run = (
        await client.get(f"/v1/icps/{icp_id}/search-runs/{started['run_id']}", headers=manager)
    ).json()
    assert run["status"] == "completed" and run["leads_created"] == 5
    with pytest.raises(NotReplayable):
        await _in_unit(runtime, replay, str(started["job_id"]))  # completed: nothing to replay


async def test_failed_pipeline_job_is_requeued(runtime) -> None:
    FLAKY.update(broken=True, runs=0)
    async with unit_of_work(runtime.db) as conn:
        await conn.enqueue("test_flaky_pipeline_job", {"lead_id": "x"})
    await drain_jobs(runtime)
    (letter,) = [
        d for d in await _in_unit(runtime, list_dead_letters) if d.type == "test_flaky_pipeline_job"
    ]
    tries = FLAKY["runs"]
    assert tries >= 1
    FLAKY["broken"] = False
    assert "queued again" in await _in_unit(runtime, replay, letter.id)
    await drain_jobs(runtime)
    assert FLAKY["runs"] == tries + 1
    assert not [
        d for d in await _in_unit(runtime, list_dead_letters) if d.type == "test_flaky_pipeline_job"
    ]
    with pytest.raises(NotReplayable):
        await _in_unit(runtime, replay, "not-an-id")


def test_cli_lists_and_refuses_unknown_jobs(database_url, runtime, monkeypatch) -> None:
    from leadflood.cli import app
    from leadflood.core.logging import configure_logging
    from leadflood.core.settings import get_settings

    monkeypatch.setenv("LEADFLOOD_DATABASE_URL", database_url)
    get_settings.cache_clear()
    try:
        runner = CliRunner()
        listed = runner.invoke(app, ["jobs", "list"])
        assert listed.exit_code == 0 and "no failed jobs" in listed.output
        missing = runner.invoke(app, ["jobs", "replay", "00000000-0000-0000-0000-000000000000"])
        assert missing.exit_code == 2 and "not_replayable" in missing.output
    finally:
        get_settings.cache_clear()
        configure_logging(runtime.settings.log_level, runtime.settings.log_json)
