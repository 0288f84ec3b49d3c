"""Workers that die, freeze, stop, or run longer than the broker's consumer timeout."""

from __future__ import annotations

import asyncio
import signal
import time
from pathlib import Path
from typing import Any

from services.dev.servers import LocalServers
from shared.messages import TaskError, TaskFailed, TaskSucceeded
from shared.objects import open_objects
from shared.runtime import open_broker
from shared.topology import EVENTS_EXCHANGE
from tests.conftest import SettingsFactory
from tests.faults.conftest import private_url, worker_process
from tests.platform import Account, Client, backend, gateway_for, submit, wait_job
from tests.processes import wait_exit

FAST = {"heartbeat_seconds": 0.5, "task_silence_seconds": 3.0, "allow_private_networks": True}


def without_urls(tasks: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Tasks as shown, less the presigned URLs (signed anew at every read)."""
    return [{**task, "outputs": [{k: v for k, v in o.items() if k != "url"}
                                 for o in task["outputs"]]} for task in tasks]


async def wait_running(client: Client, account: Account, job_id: str) -> dict[str, Any]:
    return await wait_job(client, account, job_id, statuses={1}, within=30)


async def test_killed_worker_task_is_retried_elsewhere_and_completes_once(
    settings_factory: SettingsFactory, aiohttp_client: Any, slow_server: str,
    tmp_path: Any,
) -> None:
    settings = settings_factory(**FAST)
    client, account = await gateway_for(settings, aiohttp_client)
    async with backend(settings, workers=0, logger=False):
        async with worker_process(settings, tmp_path / "doomed.log") as doomed:
            job = await submit(client, account, {"tasks": [{"tool": "storage:get", "parameters": {
                "source": f"{slow_server}/slow", "destination": "slow.txt"}}]})
            await wait_running(client, account, job["id"])
            doomed.process.send_signal(signal.SIGKILL)
            killed_at = time.monotonic()
            await wait_exit(doomed, 10)
        async with worker_process(settings, tmp_path / "rescuer.log"):
            done = await wait_job(client, account, job["id"], within=60)
            recovery = time.monotonic() - killed_at
        task = done["tasks"][0]
        assert done["status_text"] == "Completed", done
        assert task["attempts"] == 2
        assert [o["path"] for o in task["outputs"]] == [f"jobs/{job['id']}/slow.txt"]
        async with open_objects(settings) as objects:
            assert await objects.list_keys(f"jobs/{job['id']}/") == [f"jobs/{job['id']}/slow.txt"]

        # A late message from the dead attempt changes nothing.
        async with open_broker(settings, "late", 1) as broker:
            await broker.publisher.publish(EVENTS_EXCHANGE, "task.succeeded", TaskSucceeded(
                job_id=job["id"], task_id=1, attempt=1, result={"late": True}))
            await broker.publisher.publish(EVENTS_EXCHANGE, "task.failed", TaskFailed(
                job_id=job["id"], task_id=1, attempt=1,
                error=TaskError(error_class="Late", message="from the dead attempt")))
        await asyncio.sleep(1.0)  # give the scheduler time to (not) act on them
        again = await wait_job(client, account, job["id"])
    assert without_urls(again["tasks"]) == without_urls(done["tasks"])
    assert again["status_text"] == "Completed"
    print(f"crash recovery: job completed {recovery:.1f} s after SIGKILL (silence 3 s)")


async def test_frozen_worker_is_given_up_and_its_late_result_ignored(
    settings_factory: SettingsFactory, aiohttp_client: Any, tmp_path: Any
) -> None:
    settings = settings_factory(**FAST)
    client, account = await gateway_for(settings, aiohttp_client)
    async with backend(settings, workers=0, logger=False):
        async with worker_process(settings, tmp_path / "frozen.log") as frozen:
            job = await submit(client, account, {"tasks": [
                {"tool": "debug:sleep", "parameters": {"seconds": 3}}]})
            await wait_running(client, account, job["id"])
            frozen.process.send_signal(signal.SIGSTOP)  # the TCP connection stays open
            try:
                async with worker_process(settings, tmp_path / "rescuer.log"):
                    done = await wait_job(client, account, job["id"], within=60)
                    assert done["status_text"] == "Completed"
                    assert done["tasks"][0]["attempts"] == 2
                    frozen.process.send_signal(signal.SIGCONT)
                    # The thawed worker finishes attempt 1 and reports it: fenced off.
                    await asyncio.sleep(4)
                    again = await wait_job(client, account, job["id"])
            finally:
                frozen.process.send_signal(signal.SIGCONT)
    assert without_urls(again["tasks"]) == without_urls(done["tasks"])
    assert again["status_text"] == "Completed"


async def test_running_task_sends_heartbeats(
    settings_factory: SettingsFactory, aiohttp_client: Any, slow_server: str, tmp_path: Any
) -> None:
    """A download of unknown length reports no progress of its own; heartbeats still come."""
    settings = settings_factory(**FAST)
    client, account = await gateway_for(settings, aiohttp_client)
    from shared.store import open_store

    async with backend(settings, workers=0, logger=False), \
            worker_process(settings, tmp_path / "w.log"), \
            open_store(settings, "test") as store:
        job = await submit(client, account, {"tasks": [{"tool": "storage:get", "parameters": {
            "source": f"{slow_server}/slow"}}]})
        await wait_running(client, account, job["id"])
        beats = set()
        deadline = time.monotonic() + 2.5
        while time.monotonic() < deadline:
            document = await store.jobs.find_one({"_id": job["id"]})
            assert document is not None
            if document.get("heartbeat") is not None and document["status"] == 1:
                beats.add(document["heartbeat"])
            await asyncio.sleep(0.1)
        done = await wait_job(client, account, job["id"])
    assert len(beats) >= 3, beats  # at least every second with a 0.5 s heartbeat
    assert done["tasks"][0]["attempts"] == 1


async def test_sigterm_hands_back_a_task_that_another_worker_then_completes(
    settings_factory: SettingsFactory, aiohttp_client: Any, tmp_path: Any
) -> None:
    settings = settings_factory(**FAST, grace_period=0.5)
    client, account = await gateway_for(settings, aiohttp_client)
    async with backend(settings, workers=0, logger=False):
        async with worker_process(settings, tmp_path / "leaving.log") as leaving:
            job = await submit(client, account, {"tasks": [
                {"tool": "debug:sleep", "parameters": {"seconds": 2}}]})
            await wait_running(client, account, job["id"])
            leaving.process.send_signal(signal.SIGTERM)
            assert await wait_exit(leaving, 20) == 0
        # Handed back at once: the task waits for the next worker as attempt 2.
        deadline = time.monotonic() + 5
        while (handed_back := (await (await client.get(
                f"/api/jobs/{job['id']}/", headers=account.headers)).json())["tasks"][0]
               )["attempts"] < 2:
            assert time.monotonic() < deadline, handed_back
            await asyncio.sleep(0.1)
        assert handed_back["status_text"] == "Queued"
        assert handed_back["error"]["class"] == "WorkerStopped"
        async with worker_process(settings, tmp_path / "staying.log"):
            done = await wait_job(client, account, job["id"], within=30)
    assert done["status_text"] == "Completed"
    assert done["tasks"][0]["attempts"] == 2


async def test_task_longer_than_the_consumer_timeout_runs_once(
    private_broker: LocalServers, settings_factory: SettingsFactory, aiohttp_client: Any,
    tmp_path: Any,
) -> None:
    """The private node closes channels holding a delivery for over 2 s; the task takes 5."""
    settings = settings_factory(**FAST, amqp_url=private_url(private_broker))
    client, account = await gateway_for(settings, aiohttp_client)
    async with backend(settings, workers=0, logger=False), \
            worker_process(settings, tmp_path / "w.log") as worker:
        job = await submit(client, account, {"tasks": [
            {"tool": "debug:sleep", "parameters": {"seconds": 5}}]})
        done = await wait_job(client, account, job["id"], within=60)
        # Watch for longer than the task takes: a closed channel would have redelivered it
        # and the worker would be running it again.
        await asyncio.sleep(6)
        log = (tmp_path / "w.log").read_text()
        assert worker.returncode is None
    assert done["status_text"] == "Completed"
    assert done["tasks"][0]["attempts"] == 1
    assert "could not settle" not in log
    assert log.count('"event": "task succeeded"') == 1


async def test_a_killed_workers_task_is_retried_within_seconds_and_its_scratch_removed(
    settings_factory: SettingsFactory, aiohttp_client: Any, tmp_path: Path,
) -> None:
    """With the default 60 s silence rule: the broker drops the dead worker's control queue
    at once, and the scheduler gives its task up within `worker_lost_seconds`."""
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    settings = settings_factory(heartbeat_seconds=0.5, scratch_dir=str(scratch))
    assert settings.task_silence_seconds == 60
    client, account = await gateway_for(settings, aiohttp_client)
    async with backend(settings, workers=0, logger=False):
        async with worker_process(settings, tmp_path / "doomed.log") as doomed:
            job = await submit(client, account, {"tasks": [
                {"tool": "debug:sleep", "parameters": {"seconds": 2}}]})
            await wait_running(client, account, job["id"])
            deadline = time.monotonic() + 5
            while not (left_behind := list(scratch.glob(f"conveyor-w{doomed.pid}-*"))):
                assert time.monotonic() < deadline, "the task has no scratch directory"
                await asyncio.sleep(0.05)
            doomed.process.send_signal(signal.SIGKILL)
            killed_at = time.monotonic()
            await wait_exit(doomed, 10)
        async with worker_process(settings, tmp_path / "rescuer.log"):
            deadline = killed_at + 10
            while (task := (await wait_job(client, account, job["id"], statuses={0, 1, 2}))[
                    "tasks"][0])["attempts"] < 2:
                assert time.monotonic() < deadline, f"not retried within 10 s: {task}"
                await asyncio.sleep(0.1)
            retried_after = time.monotonic() - killed_at
            done = await wait_job(client, account, job["id"], within=30)
            leftovers = [p for p in left_behind if p.exists()]
    assert leftovers == []
    assert done["status_text"] == "Completed"
    assert done["tasks"][0]["attempts"] == 2
    assert "disconnected from the broker" in task["error"]["message"], task
    print(f"killed worker: its task retried {retried_after:.1f} s after SIGKILL (silence 60 s)")
