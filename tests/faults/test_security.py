"""No way in for anyone who does not belong: every route with another organization's key,
oversized requests, and credentials that never come back out."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from aiohttp import web

from services.dev.servers import free_port
from services.gateway.app import create_app
from services.gateway.routes import ROUTES
from shared.health import serve_app
from shared.objects import open_objects
from tests.conftest import SettingsFactory
from tests.platform import Account, Client, backend, make_account, submit, wait_job


async def test_every_route_with_another_organizations_key(
    settings_factory: SettingsFactory, aiohttp_client: Any
) -> None:
    settings = settings_factory(logger_port=free_port())
    client: Client = await aiohttp_client(create_app(settings))
    owner = await make_account(settings, "acme", "alice")
    stranger = await make_account(settings, "globex", "bob")
    async with backend(settings):
        job = await submit(client, owner, {"tags": ["acme-only"], "tasks": [
            {"tool": "debug:log", "parameters": {"messages": ["acme's secret plans"]}}]})
        await wait_job(client, owner, job["id"])
        bundle = await client.post("/job_bundle/", json={"name": "acme-bundle"},
                                   headers=owner.headers)
        assert bundle.status == 201
        gate_job, data_bundle = await gate_job_of(client, owner)
        walked: list[tuple[str, str, int]] = []
        for route in ROUTES:
            gate = route.path.startswith(("/api/job/{job_id}", "/api/data/"))
            path = route.path.format(job_id=gate_job if gate else job["id"], task_id=1,
                                     spec_id=1, bundle_id=data_bundle)
            if route.path == "/api/job/{job_id}/log":
                path = route.path.format(job_id=job["id"])
            body: dict[str, Any] | None = None
            if route.method == "POST":
                body = {"tasks": [{"tool": "debug:sleep"}]}
                if route.path in {"/job_bundle/", "/api/job_bundle/", "/api/job"}:
                    body = {"name": f"globex-{len(walked)}"}
                elif route.path == "/api/data":
                    body = {"name": f"globex-{len(walked)}", "fileName": "docs.zip"}
            response = await client.request(route.method, path, headers=stranger.headers,
                                            json=body)
            text = await response.text()
            walked.append((route.method, route.path, response.status))
            assert "acme" not in text, (route.path, text)
            if "{job_id}" in route.path or "{bundle_id}" in route.path:
                assert response.status == 404, (route.path, response.status, text)
            else:  # listings and creations: answered, but with nothing of acme's
                assert response.status in {200, 201}, (route.path, response.status, text)
                assert job["id"] not in text, (route.path, text)
                assert gate_job not in text, (route.path, text)
                assert data_bundle not in text, (route.path, text)
    assert len(walked) == len(ROUTES)


async def gate_job_of(client: Client, owner: Account) -> tuple[str, str]:
    """A GATE Cloud-style job of `owner`'s, with an input (from a data bundle) and an
    output: (job id, data bundle id)."""
    job = await client.post("/api/job", json={"name": "acme-gate"}, headers=owner.headers)
    bundle = await client.post("/api/data", json={"name": "acme-docs", "fileName": "d.zip"},
                               headers=owner.headers)
    job_id, bundle_id = (await job.json())["id"], (await bundle.json())["id"]
    for kind, spec in (("input", {"sourceBundle": bundle_id}), ("output", {"type": "JSON"})):
        added = await client.post(f"/api/job/{job_id}/{kind}", json=spec,
                                  headers=owner.headers, allow_redirects=False)
        assert added.status == 303, await added.text()
    return job_id, bundle_id


async def test_oversized_headers_and_bodies_are_refused_cleanly(
    settings_factory: SettingsFactory, aiohttp_client: Any
) -> None:
    settings = settings_factory(max_body_bytes=2048)
    client: Client = await aiohttp_client(create_app(settings))
    account = await make_account(settings)
    huge_header = await client.get("/api/jobs/", headers={**account.headers,
                                                          "X-Padding": "x" * 20_000})
    assert 400 <= huge_header.status < 500
    assert "Traceback" not in await huge_header.text()
    huge_body = await client.post("/api/jobs/", data=b"{" + b" " * 10_000 + b"}",
                                  headers={**account.headers, "Content-Type": "application/json"})
    assert huge_body.status == 413


async def test_credentials_never_come_back_in_answers_errors_or_logs(
    settings_factory: SettingsFactory, aiohttp_client: Any
) -> None:
    settings = settings_factory(logger_port=free_port())
    client: Client = await aiohttp_client(create_app(settings))
    account = await make_account(settings)
    password, token = "hunter2-never-shown", "tok-never-shown"
    async with backend(settings):
        job = await submit(client, account, {"tasks": [{"tool": "storage:get", "parameters": {
            "source": f"http://alice:{password}@127.0.0.1:9/file.bin",
            "credentials": {"token": token}}}]})
        done = await wait_job(client, account, job["id"])
        task_log = await client.get(f"/api/jobs/{job['id']}/tasks/1/logs/",
                                    headers=account.headers)
        job_log = await client.get(f"/api/job/{job['id']}/log", headers=account.headers)
        texts = [str(job), str(done), await task_log.text(), await job_log.text()]
    assert done["status_text"] == "Failed"
    assert done["tasks"][0]["error"]["class"] == "BlockedDestinationError"
    assert task_log.status == 200
    for text in texts:
        assert password not in text
        assert token not in text
    assert "alice:***@127.0.0.1" in str(done["tasks"][0]["parameters"])


@asynccontextmanager
async def serving(body: bytes) -> AsyncIterator[str]:
    """An HTTP server on loopback that serves `body` at /file.bin."""
    app = web.Application()

    async def file(_: web.Request) -> web.Response:
        return web.Response(body=body, content_type="application/octet-stream")

    app.router.add_get("/file.bin", file)
    async with serve_app(app, "127.0.0.1", 0) as port:
        yield f"http://127.0.0.1:{port}/file.bin"


async def test_one_organization_cannot_overwrite_the_shared_samples(
    settings_factory: SettingsFactory, aiohttp_client: Any
) -> None:
    # Private networks are allowed only so that B can fetch its bytes from loopback.
    settings = settings_factory(logger_port=free_port(), allow_private_networks=True)
    client: Client = await aiohttp_client(create_app(settings))
    reader = await make_account(settings, "acme", "alice")
    attacker = await make_account(settings, "globex", "bob")
    bucket, sample = settings.s3_bucket, b"Hello from Conveyor!\n"
    async with open_objects(settings) as objects, serving(os.urandom(2 * 1024**2)) as url, \
            backend(settings):
        await objects.upload_bytes("samples/hello.txt", sample)  # as `conveyor dev` does
        # Any keys at all: the stand-in accepts them, and the bucket is still the platform's.
        keys = {"access_key": "made-up", "secret_key": "made-up"}
        for destination, credentials in ((f"s3://{bucket}/samples/hello.txt", None),
                                         (f"s3://{bucket}/samples/", None),
                                         (f"s3://{bucket}/samples/hello.txt", keys)):
            put_parameters = {"source": "hello.txt", "destination": destination,
                              "credentials": credentials}
            job = await submit(client, attacker, {"tasks": [
                {"tool": "storage:get", "parameters": {"source": url,
                                                       "destination": "hello.txt"}},
                {"tool": "storage:put", "parameters": put_parameters}]})
            done = await wait_job(client, attacker, job["id"])
            put = done["tasks"][1]
            assert done["status_text"] == "Failed", (destination, done)
            assert put["attempts"] == 1, put  # permanent: not tried again
            assert put["error"]["class"] == "ToolError", put
            assert f"refusing to write {destination}" in put["error"]["message"], put
            assert "shared by every organization and read-only" in put["error"]["message"]
        read = await submit(client, reader, {"tasks": [{"tool": "storage:get", "parameters": {
            "source": f"s3://{bucket}/samples/hello.txt"}}]})
        assert (await wait_job(client, reader, read["id"]))["status_text"] == "Completed"
        assert await objects.read_bytes("samples/hello.txt") == sample
        assert await objects.read_bytes(f"jobs/{read['id']}/hello.txt") == sample
