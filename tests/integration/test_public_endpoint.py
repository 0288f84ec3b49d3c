"""CONVEYOR_S3_PUBLIC_ENDPOINT end to end: every URL the platform gives a client (a job's
outputs, a GATE job's application `putUrl`, a data bundle's `putUrl` and file URLs) points at
the public address and is signed for it, and works there. The public address here is
another name of the test's S3 server, as `localhost:9000` is of compose's MinIO for the
host; moto accepts any signature, so each URL's signature is checked as MinIO would."""

from __future__ import annotations

import os
from typing import Any
from urllib.parse import urlsplit

import pytest

from shared.objects import open_objects
from shared.settings import Settings
from tests.conftest import ServerUrls, SettingsFactory
from tests.gateapi import GateApi, download, upload
from tests.platform import backend, gateway_for, submit, wait_job
from tests.sigv4 import signed_for_its_host

PAYLOAD = os.urandom(200_000)
OTHER_NAME = {"127.0.0.1": "localhost", "localhost": "127.0.0.1"}


def other_address(endpoint: str) -> str:
    """The same server under its other loopback name."""
    parts = urlsplit(endpoint)
    if parts.hostname not in OTHER_NAME:
        pytest.skip(f"S3 at {endpoint}: no second name of it is known to this test")
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{OTHER_NAME[parts.hostname]}{port}"


@pytest.fixture
def public_settings(servers: ServerUrls, settings_factory: SettingsFactory) -> Settings:
    return settings_factory(s3_public_endpoint=other_address(servers.s3_endpoint))


def assert_public(url: str, settings: Settings, method: str = "GET") -> None:
    assert url.startswith(settings.s3_public_endpoint + f"/{settings.s3_bucket}/"), url
    assert not url.startswith(settings.s3_endpoint), url
    assert signed_for_its_host(url, settings, method), f"not signed for its host: {url}"


async def test_a_jobs_output_urls_use_the_public_endpoint(
    public_settings: Settings, aiohttp_client: Any
) -> None:
    client, account = await gateway_for(public_settings, aiohttp_client)
    async with open_objects(public_settings) as objects:
        await objects.upload_bytes("samples/public.bin", PAYLOAD)
    source = f"s3://{public_settings.s3_bucket}/samples/public.bin"
    async with backend(public_settings, logger=False):
        job = await submit(client, account, {"tasks": [
            {"tool": "storage:get", "parameters": {"source": source}},
            {"tool": "storage:put", "parameters": {"source": "*.bin"}},
        ]})
        done = await wait_job(client, account, job["id"])
    assert done["status_text"] == "Completed", done
    outputs = [output for task in done["tasks"] for output in task["outputs"]]
    assert [output["path"] for output in outputs] == [
        f"jobs/{job['id']}/public.bin", f"outputs/{job['id']}/public.bin"]
    for output in outputs:
        assert_public(output["url"], public_settings)
        assert await download(output["url"]) == PAYLOAD


async def test_gate_put_urls_and_bundle_files_use_the_public_endpoint(
    public_settings: Settings, aiohttp_client: Any
) -> None:
    client, account = await gateway_for(public_settings, aiohttp_client)
    api = GateApi(client, account, xml=False)
    job = (await api.ok("POST", "/api/job", "job", {"name": "public"}, status=201))["id"]
    application = await api.ok("POST", f"/api/job/{job}/application", "application",
                               {"fileName": "app.zip"})
    assert_public(application["putUrl"], public_settings, "PUT")
    await upload(application["putUrl"], PAYLOAD)
    assert (await api.ok("GET", f"/api/job/{job}/application"))["uploaded"] is True

    bundle = await api.ok("POST", "/api/data", "bundle",
                          {"name": "documents", "fileName": "documents.zip"}, status=201)
    assert_public(bundle["putUrl"], public_settings, "PUT")
    await upload(bundle["putUrl"], PAYLOAD)
    shown = await api.ok("GET", f"/api/data/{bundle['id']}")
    assert [file["name"] for file in shown["files"]] == ["documents.zip"]
    url = shown["files"][0]["url"]
    assert_public(url, public_settings)
    assert await download(url) == PAYLOAD


async def test_unset_the_urls_use_the_s3_endpoint(
    settings: Settings, aiohttp_client: Any
) -> None:
    client, account = await gateway_for(settings, aiohttp_client)
    api = GateApi(client, account, xml=False)
    bundle = await api.ok("POST", "/api/data", "bundle",
                          {"name": "documents", "fileName": "documents.zip"}, status=201)
    assert bundle["putUrl"].startswith(f"{settings.s3_endpoint}/{settings.s3_bucket}/")
    assert signed_for_its_host(bundle["putUrl"], settings, "PUT")
