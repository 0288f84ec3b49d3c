"""Retries by tool policy, stopping jobs, idempotent submission, dead letters and their
replay, and a broker stopped and started again in the middle of a run."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from services.dev.servers import LocalServers
from services.gateway.idempotency import LIFETIME, body_hash
from shared.messages import JobSubmitted
from shared.runtime import open_broker
from shared.store import open_store
from shared.topology import JOBS_EXCHANGE
from tests.conftest import SettingsFactory
from tests.faults.conftest import private_url
from tests.integration.test_tenancy import admin
from tests.platform import backend, gateway_for, submit, wait_job

FAST = {"heartbeat_seconds": 0.5, "task_silence_seconds": 30.0, "allow_private_networks": True}


async def test_transient_failures_are_retried_permanent_ones_fail_at_once(
    settings_factory: SettingsFactory, aiohttp_client: Any, slow_server: str
) -> None:
    settings = settings_factory(**FAST)
    client, account = await gateway_for(settings, aiohttp_client)
    def job(tool: str, **parameters: Any) -> dict[str, Any]:
        return {"tasks": [{"tool": tool, "parameters": parameters}]}

    async with backend(settings, logger=False):
        recovers = await submit(client, account, job("debug:fail", transient=True, attempts=2))
        exhausted = await submit(client, account, job("debug:fail", transient=True,
                                                      message="still down"))
        permanent = await submit(client, account, job("debug:fail", message="bad input"))
        flaky_http = await submit(client, account, job("storage:get",
                                                       source=f"{slow_server}/flaky"))
        missing = await submit(client, account, job("storage:get",
                                                    source=f"{slow_server}/missing"))
        results = {name: await wait_job(client, account, submitted["id"], within=60)
                   for name, submitted in [("recovers", recovers), ("exhausted", exhausted),
                                     ("permanent", permanent), ("flaky_http", flaky_http),
                                     ("missing", missing)]}
    task = {name: job["tasks"][0] for name, job in results.items()}
    assert results["recovers"]["status_text"] == "Completed"
    assert task["recovers"]["attempts"] == 3
    assert results["exhausted"]["status_text"] == "Failed"
    assert task["exhausted"]["attempts"] == 3  # debug:fail's policy: 3 attempts
    assert task["exhausted"]["error"] == {"class": "TransientError", "message": "still down",
                                          "attempt": 3}
    assert (results["permanent"]["status_text"], task["permanent"]["attempts"]) == ("Failed", 1)
    assert task["permanent"]["error"]["class"] == "ToolError"
    assert results["flaky_http"]["status_text"] == "Completed"  # two 503s, then the file
    assert task["flaky_http"]["attempts"] == 3
    assert (results["missing"]["status_text"], task["missing"]["attempts"]) == ("Failed", 1)
    assert "answered 404" in task["missing"]["error"]["message"]


async def test_stop_interrupts_the_running_tool_and_cancels_the_rest(
    settings_factory: SettingsFactory, aiohttp_client: Any
) -> None:
    settings = settings_factory(**FAST, worker_concurrency=1)
    client, account = await gateway_for(settings, aiohttp_client)
    async with backend(settings, logger=False):
        job = await submit(client, account, {"tasks": [
            {"tool": "debug:sleep", "parameters": {"seconds": 60}},
            {"tool": "debug:sleep", "parameters": {"seconds": 0}}]})
        await wait_job(client, account, job["id"], statuses={1})
        response = await client.post(f"/api/jobs/{job['id']}/stop/", headers=account.headers)
        stopped = await response.json()
        assert response.status == 200, stopped
        stopped_at = time.monotonic()
        # The only worker slot is free again only if the 60 s sleep was interrupted.
        follower = await submit(client, account, {"tasks": [
            {"tool": "debug:sleep", "parameters": {"seconds": 0}}]})
        await wait_job(client, account, follower["id"], within=10)
        freed_after = time.monotonic() - stopped_at
        again = await client.post(f"/api/jobs/{job['id']}/stop/", headers=account.headers)
        assert again.status == 409
        final = await wait_job(client, account, job["id"])
    assert (stopped["status"], stopped["status_text"]) == (4, "Cancelled")
    assert [t["status"] for t in stopped["tasks"]] == [4, 4]
    assert final["status_text"] == "Cancelled"
    assert freed_after < 2.0, freed_after


async def test_idempotency_key(settings_factory: SettingsFactory, aiohttp_client: Any) -> None:
    settings = settings_factory()
    client, account = await gateway_for(settings, aiohttp_client)
    body = {"tasks": [{"tool": "debug:sleep", "parameters": {"seconds": 0}}], "tags": ["once"]}
    headers = {**account.headers, "Idempotency-Key": "order-4711"}
    first = await client.post("/api/jobs/", json=body, headers=headers)
    assert first.status == 201
    reordered = {"tags": ["once"], "tasks": body["tasks"]}
    second = await client.post("/api/jobs/", json=reordered, headers=headers)
    assert second.status == 200
    assert second.headers["Idempotent-Replayed"] == "true"
    assert (await second.json())["id"] == (await first.json())["id"]
    other = await client.post("/api/jobs/", json={**body, "tags": ["twice"]}, headers=headers)
    assert other.status == 409
    assert "another request body" in (await other.json())["error"]
    fresh = await client.post("/api/jobs/", json=body,
                              headers={**account.headers, "Idempotency-Key": "order-4712"})
    assert fresh.status == 201
    bad = await client.post("/api/jobs/", json=body,
                            headers={**account.headers, "Idempotency-Key": "x" * 300})
    assert bad.status == 400
    listed = await (await client.get("/api/jobs/?tag=once", headers=account.headers)).json()
    assert listed["count"] == 2
    # A key claimed by a request that failed before storing its job is freed after a minute.
    async with open_store(settings, "test") as store:
        user = await store.users.find_one({"name": account.user})
        assert user is not None
        await store.idempotency.insert_one({
            "_id": f"{user['_id']}:abandoned", "body_hash": body_hash(body),
            "job_id": "neverstored",
            "expires": datetime.now(UTC) + LIFETIME - timedelta(minutes=2)})
    retried = await client.post("/api/jobs/", json=body,
                                headers={**account.headers, "Idempotency-Key": "abandoned"})
    assert retried.status == 201


async def test_dead_letters_are_listed_and_replayed(
    settings_factory: SettingsFactory, aiohttp_client: Any
) -> None:
    """A produced job for an organization that does not exist yet dies with the reason; once
    the organization exists, replaying it runs the job."""
    settings = settings_factory(**FAST)
    client, account = await gateway_for(settings, aiohttp_client)
    message = JobSubmitted.model_validate({
        "job_id": "deadletter1", "organization_id": "org-not-yet",
        "spec": {"tasks": [{"tool": "debug:sleep", "parameters": {"seconds": 0}}]}})
    async with backend(settings, logger=False):
        async with open_broker(settings, "producer", 1) as broker:
            await broker.publisher.publish(JOBS_EXCHANGE, "job.submitted", message)
        deadline = time.monotonic() + 15
        while True:
            code, lines, err = await admin(settings, "dead", "list")
            assert code == 0, err
            if lines[-1] == "1 dead letter(s)":
                break
            assert time.monotonic() < deadline, lines
            await asyncio.sleep(0.2)
        message_id, queue, dead_at, reason = lines[0].split("  ", 3)
        assert (message_id, queue) == (str(message.message_id), "scheduler.jobs")
        assert "no organization 'org-not-yet'" in reason
        assert dead_at.startswith("20")
        assert (await admin(settings, "dead", "list"))[1] == lines  # listing changes nothing
        code, _, err = await admin(settings, "dead", "replay", "nosuchid")
        assert code == 1
        assert "no dead letter with id 'nosuchid'" in err

        async with open_store(settings, "test") as store:
            await store.organizations.insert_one({"_id": "org-not-yet", "name": "late org"})
            await store.users.update_one({"name": account.user}, {"$set": {"memberships": [
                {"organization_id": "org-not-yet", "roles": []}]}})
        code, replayed, err = await admin(settings, "dead", "replay", message_id[:8])
        assert code == 0, err
        assert replayed == [f"replayed {message_id} to scheduler.jobs", "1 replayed"]
        done = await wait_job(client, account, "deadletter1")
        assert (await admin(settings, "dead", "list"))[1] == ["0 dead letter(s)"]
    assert done["status_text"] == "Completed"
    assert done["organization"] == "late org"


async def test_broker_outage_mid_run_loses_nothing_and_runs_each_job_once(
    private_broker: LocalServers, settings_factory: SettingsFactory, aiohttp_client: Any
) -> None:
    settings = settings_factory(**FAST, amqp_url=private_url(private_broker))
    client, account = await gateway_for(settings, aiohttp_client)
    task = {"tool": "debug:sleep", "parameters": {"seconds": 1}}
    async with backend(settings, workers=2):
        before = [await submit(client, account, {"tags": ["outage"], "tasks": [task, task]})
                  for _ in range(4)]
        await wait_job(client, account, before[0]["id"], statuses={1, 2})
        await private_broker.rabbitmqctl("stop_app")
        try:
            # The gateway still takes jobs while the broker is down (they wait in its outbox).
            during = [await submit(client, account, {"tags": ["outage"], "tasks": [task]})
                      for _ in range(3)]
            await asyncio.sleep(3)
        finally:
            await private_broker.rabbitmqctl("start_app")
        restarted = time.monotonic()
        results = [await wait_job(client, account, job["id"], within=90)
                   for job in before + during]
        recovery = time.monotonic() - restarted
    assert [job["status_text"] for job in results] == ["Completed"] * 7
    assert all(t["attempts"] == 1 for job in results for t in job["tasks"]), results
    async with open_store(settings, "test") as store:
        assert await store.jobs.count_documents({"outbox": 1}) == 0
        assert await store.jobs.count_documents({}) == 7
    print(f"broker outage: all jobs completed {recovery:.1f} s after start_app")
