"""Jobs end to end: gateway, scheduler, workers and logger on real servers."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from services.gateway.app import create_app
from shared.health import serve_app
from shared.jobs import Status
from shared.settings import Settings
from shared.store import open_store
from shared.topology import tasks_queue
from tests.conftest import ServerUrls, SettingsFactory
from tests.messaging import wait_for_message
from tests.platform import Account, Client, backend, make_account, submit, wait_job

ClientFactory = Callable[[web.Application], Awaitable[Client]]
PAYLOAD = os.urandom(300_000)


@pytest.fixture
async def file_server() -> AsyncIterator[str]:
    """An HTTP server on loopback serving PAYLOAD at /media/input.bin, and recording
    notifications POSTed to /hook."""
    app = web.Application()
    received: list[dict[str, Any]] = []

    async def media(_: web.Request) -> web.Response:
        return web.Response(body=PAYLOAD, content_type="application/octet-stream")

    async def redirect(_: web.Request) -> web.Response:
        raise web.HTTPFound("/media/input.bin")

    async def hook(request: web.Request) -> web.Response:
        received.append(await request.json())
        return web.json_response({"ok": True})

    async def hooks(_: web.Request) -> web.Response:
        return web.json_response(received)

    app.router.add_get("/media/input.bin", media)
    app.router.add_get("/moved", redirect)
    app.router.add_post("/hook", hook)
    app.router.add_get("/hooks", hooks)
    async with serve_app(app, "127.0.0.1", 0) as port:
        yield f"http://127.0.0.1:{port}"


@pytest.fixture
def open_settings(settings_factory: SettingsFactory) -> Settings:
    """The test's file server is on loopback, so private networks are allowed here."""
    return settings_factory(allow_private_networks=True)


@pytest.fixture
async def client(open_settings: Settings, aiohttp_client: ClientFactory) -> Client:
    return await aiohttp_client(create_app(open_settings))


@pytest.fixture
async def account(open_settings: Settings) -> Account:
    return await make_account(open_settings)


async def fetch(url: str) -> bytes:
    async with aiohttp.ClientSession() as session, session.get(url) as response:
        assert response.status == 200
        return await response.read()


async def test_three_task_job_moves_the_input_to_the_output(
    open_settings: Settings, client: Client, account: Account, file_server: str
) -> None:
    async with backend(open_settings):
        job = await submit(client, account, {
            "tags": ["e2e"],
            "tasks": [
                {"tool": "storage:get", "parameters": {"source": f"{file_server}/moved",
                                                       "destination": "in/input.bin"}},
                {"tool": "debug:log", "parameters": {"messages": ["checked"]}},
                {"tool": "storage:put", "parameters": [{"name": "source", "value": "**/*.bin"}]},
            ],
        })
        assert job["status_text"] == "Queued"
        done = await wait_job(client, account, job["id"])
    assert done["status_text"] == "Completed", done
    get, log, put = done["tasks"]
    assert [t["status"] for t in done["tasks"]] == [2, 2, 2]
    assert [t["attempts"] for t in done["tasks"]] == [1, 1, 1]
    assert get["outputs"][0]["path"] == f"jobs/{job['id']}/in/input.bin"
    assert get["outputs"][0]["size"] == len(PAYLOAD)
    assert log["result"] == {"lines": 1}
    assert put["parameters"] == {"source": "**/*.bin"}  # list form answered as an object
    output = put["outputs"][0]
    assert output["path"] == f"outputs/{job['id']}/in/input.bin"
    assert await fetch(output["url"]) == PAYLOAD


async def test_failing_task_fails_the_job_and_cancels_the_rest(
    open_settings: Settings, client: Client, account: Account
) -> None:
    async with backend(open_settings):
        job = await submit(client, account, {"tasks": [
            {"tool": "debug:log", "parameters": {"messages": ["first"]}},
            {"tool": "debug:log", "parameters": {"messages": ["about to fail"], "fail": True}},
            {"tool": "debug:sleep", "parameters": {"seconds": 0}},
            {"tool": "debug:sleep", "parameters": {"seconds": 0}},
        ]})
        done = await wait_job(client, account, job["id"])
    assert (done["status"], done["status_text"]) == (3, "Failed")
    assert [t["status_text"] for t in done["tasks"]] == [
        "Completed", "Failed", "Cancelled", "Cancelled"]
    error = done["tasks"][1]["error"]
    assert error["class"] == "ToolError"
    assert error["message"] == "failed on request (fail: true)"


async def test_download_from_a_private_address_is_refused_by_default(
    settings: Settings, aiohttp_client: ClientFactory, file_server: str
) -> None:
    client = await aiohttp_client(create_app(settings))
    account = await make_account(settings)
    async with backend(settings, logger=False):
        job = await submit(client, account, {"tasks": [
            {"tool": "storage:get", "parameters": {"source": f"{file_server}/media/input.bin"}},
        ]})
        done = await wait_job(client, account, job["id"])
    assert done["status_text"] == "Failed"
    assert done["tasks"][0]["error"]["class"] == "BlockedDestinationError"
    assert "refusing 127.0.0.1" in done["tasks"][0]["error"]["message"]


async def test_job_outside_its_own_areas_cannot_read_the_platform_bucket(
    open_settings: Settings, client: Client, account: Account
) -> None:
    async with backend(open_settings, logger=False):
        job = await submit(client, account, {"tasks": [
            {"tool": "storage:get",
             "parameters": {"source": f"s3://{open_settings.s3_bucket}/jobs/OTHERJOB123/x"}},
        ]})
        done = await wait_job(client, account, job["id"])
    assert done["status_text"] == "Failed"
    assert "outside this job's areas" in done["tasks"][0]["error"]["message"]


async def test_credentials_are_redacted_and_never_logged(
    open_settings: Settings, client: Client, account: Account, servers: ServerUrls
) -> None:
    secret = "s3cr3t-value-never-shown"
    async with backend(open_settings):
        job = await submit(client, account, {"tasks": [{"tool": "storage:get", "parameters": {
            "source": "s3://no-such-bucket-anywhere/file.bin",
            "credentials": {"access_key": "AK", "secret_key": secret,
                            "endpoint": servers.s3_endpoint},
        }}]})
        assert job["tasks"][0]["parameters"]["credentials"]["secret_key"] == "***"
        done = await wait_job(client, account, job["id"])
        assert done["status_text"] == "Failed"
        async with open_store(open_settings, "test") as store:
            deadline = asyncio.get_running_loop().time() + 10
            while not await store.logs.count_documents({"job_id": job["id"]}):
                assert asyncio.get_running_loop().time() < deadline
                await asyncio.sleep(0.1)
            lines = [doc["message"] async for doc in store.logs.find({"job_id": job["id"]})]
    assert secret not in str(done)
    assert lines
    assert all(secret not in line for line in lines)


async def test_put_to_another_bucket_with_credentials(
    open_settings: Settings, client: Client, account: Account, servers: ServerUrls,
    file_server: str,
) -> None:
    from shared.objects import open_objects

    other = open_settings.model_copy(update={"s3_bucket": f"{open_settings.s3_bucket}-own"})
    async with open_objects(other) as own_bucket, backend(open_settings, logger=False):
        job = await submit(client, account, {"tasks": [
            {"tool": "storage:get", "parameters": {"source": f"{file_server}/media/input.bin",
                                                   "destination": "a/one.bin"}},
            {"tool": "storage:get", "parameters": {"source": f"{file_server}/media/input.bin",
                                                   "destination": "a/b/two.bin"}},
            {"tool": "storage:put", "parameters": {
                "source": "a/**", "destination": f"s3://{other.s3_bucket}/delivery/",
                "credentials": {"access_key": servers.s3_access_key,
                                "secret_key": servers.s3_secret_key,
                                "endpoint": servers.s3_endpoint}}},
        ]})
        done = await wait_job(client, account, job["id"])
        assert done["status_text"] == "Completed", done
        keys = await own_bucket.list_keys("delivery/")
        for key in keys:
            await own_bucket.delete(key)
        await asyncio.to_thread(own_bucket.client.remove_bucket, other.s3_bucket)
    assert keys == ["delivery/a/b/two.bin", "delivery/a/one.bin"]
    outputs = done["tasks"][2]["outputs"]
    assert {o["bucket"] for o in outputs} == {other.s3_bucket}
    assert all(o["url"] is None for o in outputs)


async def test_published_job_runs_and_is_visible_over_http(
    open_settings: Settings, client: Client, account: Account, tmp_path: Path,
    subprocess_env: dict[str, str],
) -> None:
    job_file = tmp_path / "job.json"
    job_file.write_text('{"tasks": [{"tool": "debug:log", "parameters": {"messages": ["hi"]}}],'
                        ' "tags": ["produced"]}')
    env = {**subprocess_env, "CONVEYOR_AMQP_PREFIX": open_settings.amqp_prefix,
           "CONVEYOR_MONGO_DB": open_settings.mongo_db}
    async with backend(open_settings, logger=False):
        result = await asyncio.to_thread(
            subprocess.run,
            [sys.executable, "-m", "services.cli", "publish", str(job_file),
             "--organization-id", account.organization_id],
            env=env, capture_output=True, text=True, check=False,
        )
        assert result.returncode == 0, result.stderr
        job_id = result.stdout.strip().splitlines()[-1]
        assert len(job_id) == 11
        done = await wait_job(client, account, job_id)
    assert done["status_text"] == "Completed"
    assert done["organization"] == account.organization
    assert done["tags"] == ["produced"]


async def test_two_workers_share_a_batch(
    open_settings: Settings, client: Client, account: Account
) -> None:
    async with backend(open_settings, workers=2, logger=False):
        jobs = [await submit(client, account, {"tasks": [
            {"tool": "debug:sleep", "parameters": {"seconds": 0.3}}]}) for _ in range(8)]
        for job in jobs:
            done = await wait_job(client, account, job["id"])
            assert done["status_text"] == "Completed"
    async with open_store(open_settings, "test") as store:
        workers = {doc["tasks"]["t1"]["worker"] async for doc in store.jobs.find()}
    assert len(workers) == 2


async def test_job_for_a_region_without_workers_stays_queued(
    settings_factory: SettingsFactory, aiohttp_client: ClientFactory
) -> None:
    settings = settings_factory(regions=["local", "idle"])
    client = await aiohttp_client(create_app(settings))
    account = await make_account(settings)
    from shared.runtime import open_broker

    async with backend(settings, logger=False), open_broker(settings, "t", 1) as broker:
        job = await submit(client, account, {"region": "idle", "tasks": [
            {"tool": "debug:sleep", "parameters": {"seconds": 0}}]})
        waiting = await wait_for_message(broker, tasks_queue("idle"))
        assert job["id"] in waiting.body.decode()
        again = await client.get(f"/api/jobs/{job['id']}/", headers=account.headers)
        body = await again.json()
    assert (body["status_text"], body["region"]) == ("Queued", "idle")
    assert body["tasks"][0]["status_text"] == "Queued"


async def test_restart_and_resubmit(
    open_settings: Settings, client: Client, account: Account
) -> None:
    spec = {"tags": ["again"], "tasks": [{"tool": "debug:sleep", "parameters": {"seconds": 0.5}}]}
    async with backend(open_settings, logger=False):
        job = await submit(client, account, spec)
        early = await client.post(f"/api/jobs/{job['id']}/restart/", headers=account.headers)
        assert early.status == 409
        assert "only Completed, Failed or Cancelled" in (await early.json())["error"]
        await wait_job(client, account, job["id"])

        restarted = await client.post(f"/api/jobs/{job['id']}/restart/",
                                      headers=account.headers)
        body = await restarted.json()
        assert restarted.status == 200, body
        assert (body["id"], body["status_text"]) == (job["id"], "Queued")
        assert body["tasks"][0]["attempts"] == 0
        again = await wait_job(client, account, job["id"])
        assert again["status_text"] == "Completed"
        assert again["tasks"][0]["attempts"] == 1

        resubmitted = await client.post(f"/api/jobs/{job['id']}/resubmit/",
                                        headers=account.headers)
        copy = await resubmitted.json()
        assert resubmitted.status == 201, copy
        assert copy["id"] != job["id"]
        assert copy["tags"] == ["again"]
        assert (await wait_job(client, account, copy["id"]))["status_text"] == "Completed"


async def test_a_stopped_job_restarts_and_runs_to_the_end(
    open_settings: Settings, client: Client, account: Account
) -> None:
    """The worker refuses what is left of a stopped run, not the job's later runs."""
    spec = {"tasks": [{"tool": "debug:sleep", "parameters": {"seconds": 2}},
                      {"tool": "debug:sleep", "parameters": {"seconds": 0}}]}
    async with backend(open_settings, logger=False):
        job = await submit(client, account, spec)
        await wait_job(client, account, job["id"], statuses={int(Status.RUNNING)})
        stopped = await client.post(f"/api/jobs/{job['id']}/stop/", headers=account.headers)
        assert stopped.status == 200
        assert (await wait_job(client, account, job["id"]))["status_text"] == "Cancelled"
        restarted = await client.post(f"/api/jobs/{job['id']}/restart/",
                                      headers=account.headers)
        assert restarted.status == 200, await restarted.text()
        again = await wait_job(client, account, job["id"])
    assert again["status_text"] == "Completed"
    assert [task["status_text"] for task in again["tasks"]] == ["Completed", "Completed"]


async def test_notify_receives_the_final_job_once(
    open_settings: Settings, client: Client, account: Account, file_server: str
) -> None:
    async with backend(open_settings, logger=False):
        job = await submit(client, account, {"notify": f"{file_server}/hook", "tasks": [
            {"tool": "debug:sleep", "parameters": {"seconds": 0}}]})
        await wait_job(client, account, job["id"])
        deadline = asyncio.get_running_loop().time() + 10
        async with aiohttp.ClientSession() as session:
            while True:
                async with session.get(f"{file_server}/hooks") as response:
                    hooks = await response.json()
                if hooks or asyncio.get_running_loop().time() > deadline:
                    break
                await asyncio.sleep(0.1)
    assert len(hooks) == 1
    assert (hooks[0]["id"], hooks[0]["status_text"]) == (job["id"], "Completed")
