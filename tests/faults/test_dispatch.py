"""Dispatches that go missing or arrive twice: a lost one is sent again under the same
attempt, and a second copy of a started attempt is stopped on the worker that took it."""

from __future__ import annotations

import asyncio
from typing import Any

from structlog.testing import capture_logs

from services.worker.main import serve as serve_worker
from shared.jobs import task_key, workspace_prefix
from shared.messages import TaskDispatch
from shared.runtime import open_broker
from shared.store import open_store
from shared.topology import TASKS_EXCHANGE, tasks_queue
from tests.conftest import SettingsFactory
from tests.faults.faults import count_successes
from tests.platform import backend, gateway_for, service, submit, wait_job

FAST = {"heartbeat_seconds": 0.5, "allow_private_networks": True}


async def _claimed(settings: Any, job_id: str, within: float = 20.0) -> dict[str, Any]:
    """The job once its first task is marked dispatched."""
    deadline = asyncio.get_running_loop().time() + within
    async with open_store(settings, "test") as store:
        while True:
            job = await store.jobs.find_one({"_id": job_id})
            if job is not None and job["tasks"][task_key(1)]["dispatched"]:
                return job
            assert asyncio.get_running_loop().time() < deadline, job
            await asyncio.sleep(0.1)


async def test_a_lost_dispatch_is_sent_again_under_the_same_attempt(
    settings_factory: SettingsFactory, aiohttp_client: Any
) -> None:
    settings = settings_factory(**FAST, dispatch_timeout_seconds=2.0)
    client, account = await gateway_for(settings, aiohttp_client)
    async with backend(settings, workers=0, logger=False):
        job = await submit(client, account, {"tasks": [
            {"tool": "debug:sleep", "parameters": {"seconds": 0}}]})
        await _claimed(settings, job["id"])
        # The dispatch is lost after the claim, as when the broker dead-letters it.
        async with open_broker(settings, "test", 1) as broker:
            queue = await broker.channel.get_queue(broker.topology.name(tasks_queue("local")))
            for _ in range(50):
                if (await queue.purge()).message_count:
                    break
                await asyncio.sleep(0.1)
            else:
                raise AssertionError("the dispatch never reached the queue")
        async with service(serve_worker, settings, "local"):
            done = await wait_job(client, account, job["id"], within=20)
    assert done["status_text"] == "Completed"
    assert done["tasks"][0]["attempts"] == 1


async def test_a_second_copy_of_a_started_attempt_is_stopped_without_a_report(
    settings_factory: SettingsFactory, aiohttp_client: Any
) -> None:
    settings = settings_factory(**FAST, worker_concurrency=1)
    client, account = await gateway_for(settings, aiohttp_client)
    with capture_logs() as logs:
        async with backend(settings, workers=2, logger=False), \
                count_successes(settings) as successes:
            job = await submit(client, account, {"tasks": [
                {"tool": "debug:sleep", "parameters": {"seconds": 3}}]})
            running = await wait_job(client, account, job["id"], statuses={1})
            stored = await _claimed(settings, job["id"])
            task = stored["tasks"][task_key(1)]
            async with open_broker(settings, "test", 1) as broker:  # a copy, as a resend makes
                await broker.publisher.publish(TASKS_EXCHANGE, "local", TaskDispatch(
                    job_id=job["id"], task_id=1, attempt=task["attempt"], region="local",
                    tool=task["tool"], parameters=task["parameters"],
                    workspace=workspace_prefix(job["id"])))
            done = await wait_job(client, account, job["id"], within=20)
            await asyncio.sleep(1.0)  # a second success, if any, would be counted meanwhile
    refused = [e for e in logs if e["event"].startswith("start not accepted")]
    assert done["status_text"] == "Completed"
    assert done["tasks"][0]["attempts"] == 1
    assert len(refused) == 1, [e["event"] for e in logs if "start" in e["event"]]
    assert successes[(job["id"], 1)] == 1
    assert running["status"] == 1


async def test_a_busy_worker_takes_no_more_than_it_runs(
    settings_factory: SettingsFactory, aiohttp_client: Any
) -> None:
    """Two slots, six long tasks: two run and four stay ready in the queue for any other
    worker; none was handed back (a nack counts against the delivery limit)."""
    settings = settings_factory(**FAST, worker_concurrency=2)
    client, account = await gateway_for(settings, aiohttp_client)
    async with backend(settings, workers=1, logger=False):
        jobs = [await submit(client, account, {"tasks": [
            {"tool": "debug:sleep", "parameters": {"seconds": 2}}]}) for _ in range(6)]
        await wait_job(client, account, jobs[1]["id"], statuses={1})
        async with open_broker(settings, "test", 1) as broker:
            queue = await broker.publisher.channel.declare_queue(
                broker.topology.name(tasks_queue("local")), passive=True)
            ready = queue.declaration_result.message_count
        done = [await wait_job(client, account, job["id"], within=30) for job in jobs]
    assert ready == 4
    assert [job["tasks"][0]["attempts"] for job in done] == [1] * 6
