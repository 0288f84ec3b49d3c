"""A stop goes to the scheduler as `job.control`: the gateway writes only its outbox mark,
the scheduler cancels the job with one compare-and-set (fenced by the run, and by every
task's status and attempt as read) and tells the workers."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, cast

import pytest

from services.gateway import jobcontrol
from services.scheduler.control import Stopper
from shared.broker import Publisher
from shared.jobs import Status, new_job_document, task_path
from shared.jobspec import JobSpec
from shared.settings import Settings
from shared.store import Document, Store, open_store
from tests.conftest import SettingsFactory
from tests.platform import backend, gateway_for, submit, wait_job

SLEEPER = {"tasks": [{"tool": "debug:sleep", "parameters": {"seconds": 60}},
                     {"tool": "debug:sleep", "parameters": {"seconds": 0}}]}


async def test_a_stop_is_answered_once_the_scheduler_carried_it_out(
    settings_factory: SettingsFactory, aiohttp_client: Any
) -> None:
    settings = settings_factory(heartbeat_seconds=0.5, worker_concurrency=1)
    client, account = await gateway_for(settings, aiohttp_client)
    async with backend(settings, logger=False):
        job = await submit(client, account, SLEEPER)
        await wait_job(client, account, job["id"], statuses={int(Status.RUNNING)})
        response = await client.post(f"/api/jobs/{job['id']}/stop/", headers=account.headers)
        stopped = await response.json()
        again = await client.post(f"/api/jobs/{job['id']}/stop/", headers=account.headers)
    assert response.status == 200, stopped
    assert stopped["status_text"] == "Cancelled"
    assert [t["status_text"] for t in stopped["tasks"]] == ["Cancelled", "Cancelled"]
    # A second stop finds the job final: refused, as before the stop moved to the scheduler.
    assert again.status == 409
    assert "Cancelled" in (await again.json())["error"]


async def test_without_a_scheduler_the_stop_is_accepted_and_carried_out_later(
    settings_factory: SettingsFactory, aiohttp_client: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The gateway never writes the job's state: with no scheduler running, the answer is
    202 with the job as it is, and the job stays Queued until a scheduler stops it."""
    monkeypatch.setattr(jobcontrol, "STOP_WAIT", 0.5)
    settings = settings_factory()
    client, account = await gateway_for(settings, aiohttp_client)
    job = await submit(client, account, SLEEPER)
    response = await client.post(f"/api/jobs/{job['id']}/stop/", headers=account.headers)
    accepted = await response.json()
    assert response.status == 202, accepted
    assert accepted["status_text"] == "Queued"
    async with open_store(settings, "test") as store:
        stored = await store.jobs.find_one({"_id": job["id"]})
        assert stored is not None
        assert stored["status"] == int(Status.QUEUED)
        assert stored["tasks"]["t1"]["status"] == int(Status.QUEUED)
    async with backend(settings, logger=False):
        final = await wait_job(client, account, job["id"], within=15)
    assert final["status_text"] == "Cancelled"
    assert [t["status_text"] for t in final["tasks"]] == ["Cancelled", "Cancelled"]


async def stored_job(store: Store, settings: Settings, **changes: Any) -> Document:
    """A two-task job as the scheduler would have it, task 1 running attempt 1."""
    job_id = f"stop-{datetime.now(UTC).timestamp():.6f}"
    document = new_job_document(
        job_id, JobSpec.model_validate(SLEEPER), region="local", organization_id="o",
        organization="org", user_id="u", user="user", job_bundle_id=None, job_bundle=None,
        now=datetime.now(UTC))
    document.update(status=int(Status.RUNNING), **changes)
    document["tasks"]["t1"].update(status=int(Status.RUNNING), attempt=1, dispatched=1)
    await store.jobs.insert_one(document)
    return document


@pytest.fixture
async def store(settings: Settings) -> Any:
    async with open_store(settings, "test") as opened:
        yield opened


def stopper(store: Store) -> Stopper:
    # The compare-and-set needs no broker: only the workers' fanout after it does.
    return Stopper(store, cast(Publisher, None))


async def test_a_second_stop_writes_nothing(store: Store, settings: Settings) -> None:
    job = await stored_job(store, settings)
    assert await stopper(store)._cancel(job, 1) == {1: 1, 2: 0}
    first = await store.jobs.find_one({"_id": job["_id"]})
    assert first is not None
    assert first["status"] == int(Status.CANCELLED)
    # A duplicate delivery, with the job as read before the first stop.
    assert await stopper(store)._cancel(job, 1) == {1: 1, 2: 0}
    assert await store.jobs.find_one({"_id": job["_id"]}) == first


async def test_a_stop_racing_a_task_end_keeps_the_finished_task(
    store: Store, settings: Settings
) -> None:
    stale = await stored_job(store, settings)
    # Task 1 succeeds and task 2 starts after the stop read the job.
    await store.jobs.update_one({"_id": stale["_id"]}, {"$set": {
        task_path(1, "status"): int(Status.COMPLETED), task_path(2, "status"): int(Status.RUNNING),
        task_path(2, "attempt"): 1, task_path(2, "dispatched"): 1}})
    assert await stopper(store)._cancel(stale, 1) == {1: 1, 2: 1}
    after = await store.jobs.find_one({"_id": stale["_id"]})
    assert after is not None
    assert after["status"] == int(Status.CANCELLED)
    assert after["tasks"]["t1"]["status"] == int(Status.COMPLETED)
    assert after["tasks"]["t1"]["error"] is None
    assert after["tasks"]["t2"]["status"] == int(Status.CANCELLED)


async def test_a_stop_of_an_earlier_run_leaves_the_restarted_job_alone(
    store: Store, settings: Settings
) -> None:
    job = await stored_job(store, settings, runs=2)
    assert await stopper(store)._cancel(job, 1) is None
    after = await store.jobs.find_one({"_id": job["_id"]})
    assert after is not None
    assert after["status"] == int(Status.RUNNING)
    assert after["tasks"]["t1"]["status"] == int(Status.RUNNING)
