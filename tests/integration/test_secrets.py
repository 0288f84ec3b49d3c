"""Secrets never come back out: ten kinds of secret are submitted in real jobs run by every
service as a real process; afterwards not one of them is found in any answer (JSON and XML;
the job, the list, task logs), in any service's log file, or in the store's files on disk
(nx-27017 keeps SQLite files in its data directory)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any
from urllib.parse import quote

import aiohttp
import pytest
from aiohttp import web
from cryptography.fernet import Fernet

from services.dev.servers import LocalServers, free_port
from services.gateway.app import create_app
from shared.secrets import MARKER
from shared.settings import Settings
from shared.store import open_store
from tests.conftest import ServerUrls, SettingsFactory, process_env
from tests.gateapi import GateApi
from tests.platform import Account, Client, make_account
from tests.processes import conveyor, wait_status

FINAL = {2, 3, 4}


def secret(kind: str) -> str:
    """A value found nowhere else: `grep` for it afterwards has no false hits."""
    return f"{kind}-{uuid.uuid4().hex[:12]}"


@pytest.fixture
async def files_server() -> AsyncIterator[str]:
    """HTTP on loopback: /file answers a few bytes to anyone, /denied a 403."""

    async def answer(request: web.Request) -> web.Response:
        if request.path == "/file":
            return web.Response(body=b"hello\n")
        return web.Response(status=403 if request.path == "/denied" else 204)

    app = web.Application()
    app.router.add_get("/file", answer)
    app.router.add_get("/denied", answer)
    app.router.add_post("/hook", answer)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    yield f"127.0.0.1:{port}"
    await runner.cleanup()


@pytest.fixture
async def private_store(tmp_path: Path) -> AsyncIterator[tuple[str, Path]]:
    """An nx-27017 of this test's own, so that its data files can be searched."""
    servers = LocalServers()
    data = tmp_path / "store"
    url = await servers.start_mongo(data)
    yield url, data
    await servers.stop()


def jobs_with_secrets(host: str, s: dict[str, str]) -> list[dict[str, Any]]:
    get = "storage:get"
    return [
        {"tasks": [{"tool": get, "parameters": {
            "source": f"http://:{s['empty_user']}@{host}/file"}}],
         "notify": f"http://hook:{s['notify']}@{host}/hook"},
        {"tasks": [{"tool": get, "parameters": {
            "source": f"http://bob:{s['userinfo']}@{host}/file?token={s['token']}"}}]},
        {"tasks": [{"tool": get, "parameters": {
            "source": f"http://{host}/file?X-Amz-Signature={s['amz_signature']}"
                      f"&X-Amz-Credential={quote(s['amz_credential'] + '/2026/s3')}"}}]},
        {"tasks": [{"tool": get, "parameters": {
            "source": f"http://{host}/file?access_token={s['access_token']}&sig={s['sig']}",
            "credentials": {"username": "carol", "password": s["password"]}}}]},
        # A fetch that fails repeats its URL in the error and in the task's log.
        {"tasks": [{"tool": get, "parameters": {
            "source": f"http://:{s['in_error']}@{host}/denied?apikey={s['apikey']}"}}]},
        # A tool's own log line and error message that repeat a secret.
        {"tasks": [{"tool": "debug:log", "parameters": {"messages": [
            f"calling https://svc:{s['in_log']}@example.com/x?signature={s['signature']}"]}},
            {"tool": "debug:fail", "parameters": {
                "message": f"gave up on https://:{s['in_log']}@example.com/"}}]},
    ]


async def read_all(session: aiohttp.ClientSession, base: str, account: Account,
                   ids: list[str]) -> list[str]:
    """Every answer that shows these jobs, as text."""
    headers = account.headers
    answers = []
    urls = [f"{base}/api/jobs/", f"{base}/api/jobs/?page_size=100"]
    for job_id in ids:
        urls += [f"{base}/api/jobs/{job_id}/", f"{base}/api/job/{job_id}/log",
                 f"{base}/api/jobs/{job_id}/metrics/"]
        urls += [f"{base}/api/jobs/{job_id}/tasks/{task}/logs/" for task in (1, 2)]
    for url in urls:
        for accept in ("application/json", "application/xml"):
            async with session.get(url, headers={**headers, "Accept": accept}) as response:
                answers.append(f"{url} {response.status} " + await response.text())
    return answers


async def wait_final(session: aiohttp.ClientSession, base: str, account: Account,
                     ids: list[str], within: float = 60.0) -> list[dict[str, Any]]:
    deadline = asyncio.get_running_loop().time() + within
    while True:
        jobs = []
        for job_id in ids:
            async with session.get(f"{base}/api/jobs/{job_id}/",
                                   headers=account.headers) as response:
                jobs.append(await response.json())
        if all(job["status"] in FINAL for job in jobs):
            return jobs
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"not final within {within}s: {jobs}")
        await asyncio.sleep(0.3)


def hits(values: list[str], texts: dict[str, bytes]) -> list[tuple[str, str]]:
    return [(value, where) for value in values for where, text in texts.items()
            if value.encode() in text]


async def test_no_secret_is_shown_logged_or_stored_in_the_clear(
    private_store: tuple[str, Path], servers: ServerUrls, settings_factory: SettingsFactory,
    files_server: str, tmp_path: Path,
) -> None:
    mongo_url, store_dir = private_store
    key = Fernet.generate_key().decode()
    ports = {name: free_port() for name in ("gateway", "scheduler", "logger", "worker")}
    settings: Settings = settings_factory(mongo_url=mongo_url, secrets_key=key)
    env = process_env(servers, settings, CONVEYOR_MONGO_URL=mongo_url,
                      CONVEYOR_SECRETS_KEY=key, CONVEYOR_ALLOW_PRIVATE_NETWORKS="true",
                      CONVEYOR_LOG_LEVEL="debug", CONVEYOR_LOG_RATE_PER_MINUTE="1000",
                      **{f"CONVEYOR_{name.upper()}_PORT": str(port)
                         for name, port in ports.items()})
    account = await make_account(settings)
    kinds = ["empty_user", "userinfo", "token", "amz_signature", "amz_credential",
             "access_token", "sig", "password", "notify", "apikey", "signature",
             "in_error", "in_log"]
    values = {kind: secret(kind) for kind in kinds}
    base = f"http://127.0.0.1:{ports['gateway']}"
    async with AsyncExitStack() as stack:
        for name, port in ports.items():
            child = await stack.enter_async_context(conveyor(
                [name, "--port", str(port)], env, tmp_path / "logs" / f"{name}.log", name=name))
            await wait_status(f"http://127.0.0.1:{port}/readyz", 200, child)
        session = await stack.enter_async_context(aiohttp.ClientSession())
        ids = []
        submitted = []
        for job in jobs_with_secrets(files_server, values):
            async with session.post(f"{base}/api/jobs/", json=job,
                                    headers=account.headers) as response:
                submitted.append(await response.text())
                assert response.status == 201, submitted[-1]
                ids.append((await response.json())["id"])
        jobs = await wait_final(session, base, account, ids)
        assert [job["status_text"] for job in jobs] == [
            "Completed", "Completed", "Completed", "Completed", "Failed", "Failed"], jobs
        answers = submitted + await read_all(session, base, account, ids)
    everything = {f"answer {index}": text.encode() for index, text in enumerate(answers)}
    for path in [*tmp_path.joinpath("logs").rglob("*"), *store_dir.rglob("*")]:
        if path.is_file():
            everything[str(path.relative_to(tmp_path))] = path.read_bytes()
    assert any("store" in where for where in everything)
    secrets = [*values.values(), quote(values["amz_credential"] + "/2026/s3")]
    found = hits(secrets, everything)
    assert found == [], f"{len(found)} hits: {found}"
    # The masked forms are there, so the answers were read and are not empty.
    shown = "\n".join(answers)
    assert f"http://:***@{files_server}/file" in shown
    assert "http://hook:***@" in shown
    assert "X-Amz-Signature=***" in shown
    assert "answered 403" in shown  # the failed fetch's error, its URL masked


@pytest.mark.parametrize("xml", [False, True], ids=["json", "xml"])
async def test_gate_job_secrets_are_masked_and_stored_sealed(
    xml: bool, settings: Settings, aiohttp_client: Any
) -> None:
    """The GATE Cloud facade's passwords (a MIMIR output's, an indexUrl's, an own bucket's
    secretKey) are in no answer, and in the store only sealed."""
    values = {kind: secret(kind) for kind in ("index_url", "index_token", "password",
                                              "app_secret", "dir_secret")}
    client: Client = await aiohttp_client(create_app(settings))
    api = GateApi(client, await make_account(settings), xml)
    job = (await api.ok("POST", "/api/job", "job", {"name": "secretive"}, status=201))["id"]
    spec = await api.created_spec(job, "output", {
        "type": "MIMIR", "username": "manager", "password": values["password"],
        "indexUrl": f"https://:{values['index_url']}@mimir.example.com/idx"
                    f"?token={values['index_token']}"})
    place = {"accessKey": "AKIAOWNUSER", "endpoint": "https://s3.example.com"}
    answers = [
        await api.ok("POST", f"/api/job/{job}/application", "application", {
            "s3Location": "s3://own/app.zip", "secretKey": values["app_secret"], **place}),
        await api.ok("POST", f"/api/job/{job}/outputDirectory", "outputDirectory", {
            "s3Location": "s3://own/out", "secretKey": values["dir_secret"], **place}),
    ]
    for path in (spec, f"/api/job/{job}/output", f"/api/job/{job}",
                 f"/api/job/{job}/application", f"/api/job/{job}/outputDirectory",
                 "/api/job"):
        answers.append(await api.ok("GET", path))
    shown = repr(answers)
    assert "https://:***@mimir.example.com/idx?token=***" in shown
    async with open_store(settings, "test") as store:
        stored = repr(await store.gate_jobs.find_one({"_id": job}))
    assert stored.count(MARKER) == 5
    assert [kind for kind, value in values.items() if value in shown + stored] == []
