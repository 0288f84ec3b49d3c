"""HEAD and OPTIONS on every route (issue 16, point 3): HEAD answers as GET does without the
body, OPTIONS lists in `Allow` every method the path takes, and so do every answer of a
routed path and a 405. The expected methods come from the route table; the logger's own
port is checked too, since the gateway passes the log routes on to it."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from services.dev.servers import free_port
from services.gateway.app import create_app
from services.gateway.routes import ROUTES
from services.logger.main import serve as serve_logger
from shared.settings import Settings
from tests.conftest import SettingsFactory
from tests.gateapi import GateApi, api_path
from tests.platform import Account, Client, make_account, service, submit

# Headers that differ between two answers to the same request.
VOLATILE = {"date", "x-request-id", "ratelimit-remaining", "ratelimit-reset"}


@pytest.fixture
def method_settings(settings_factory: SettingsFactory) -> Settings:
    return settings_factory(logger_port=free_port(), log_rate_per_minute=10_000,
                            log_rate_per_day=10_000)


@pytest.fixture
async def client(method_settings: Settings, aiohttp_client: Any) -> AsyncIterator[Client]:
    gateway: Client = await aiohttp_client(create_app(method_settings))
    async with service(serve_logger, method_settings):
        yield gateway


@pytest.fixture
async def account(method_settings: Settings) -> Account:
    return await make_account(method_settings)


def expected_allow(path: str) -> set[str]:
    """What the route table says `path` takes, with HEAD beside GET, and OPTIONS."""
    methods = {route.method for route in ROUTES if route.path.rstrip("/") == path.rstrip("/")}
    return methods | {"OPTIONS"} | ({"HEAD"} if "GET" in methods else set())


def allow_of(headers: Any) -> set[str]:
    return {method.strip() for method in headers["Allow"].split(",")}


async def filled_paths(client: Client, account: Account) -> dict[str, str]:
    """Each route path of the table, and that path with the ids of things that exist."""
    job = await submit(client, account, {"tasks": [
        {"tool": "debug:sleep", "parameters": {"seconds": 0}}]})
    gate = GateApi(client, account, xml=False)
    gate_job = (await gate.ok("POST", "/api/job", "job", {"name": "j"}, status=201))["id"]
    bundle = (await gate.ok("POST", "/api/data", "bundle",
                            {"name": "docs", "fileName": "docs.zip"}, status=201))["id"]
    spec = {kind: api_path((await gate.call("POST", f"/api/job/{gate_job}/{kind}", kind,
                                            fields))[2]["Location"]).rsplit("/", 1)[1]
            for kind, fields in (("input", {"sourceBundle": bundle}),
                                 ("output", {"type": "JSON"}))}

    def fill(path: str) -> str:
        ids = {"job_id": job["id"] if path.startswith("/api/jobs/") else gate_job,
               "task_id": str(job["tasks"][0]["id"]), "bundle_id": bundle,
               "spec_id": spec["input" if "/input/" in path else "output"]}
        return re.sub(r"\{(\w+)\}", lambda m: ids[m.group(1)], path)

    return {route.path: fill(route.path) for route in ROUTES}


async def test_head_answers_every_get_route_as_get_does_without_the_body(
    client: Client, account: Account
) -> None:
    paths = await filled_paths(client, account)
    gets = [route.path for route in ROUTES if route.method == "GET"]
    assert any("{task_id}" in path for path in gets)
    assert "/api/job/{job_id}/log" in gets
    for path in gets:
        for each in {paths[path], paths[path].rstrip("/") + "/", paths[path].rstrip("/")}:
            got = await client.get(each, headers=account.headers)
            body = await got.read()
            head = await client.head(each, headers=account.headers)
            assert head.status == got.status, (each, head.status, body[:200])
            assert await head.read() == b"", each
            assert {key.lower(): value for key, value in head.headers.items()
                    if key.lower() not in VOLATILE} == {
                key.lower(): value for key, value in got.headers.items()
                if key.lower() not in VOLATILE}, each
    # Authentication applies to HEAD as to GET, the forwarded log routes included.
    for path in ("/api/jobs/", paths["/api/job/{job_id}/log"]):
        response = await client.head(path)
        assert response.status == 401, path
        assert "api-key" in response.headers["WWW-Authenticate"]


async def test_options_lists_every_method_of_the_path_without_a_key(client: Client) -> None:
    for route in ROUTES:
        for each in {route.path, route.path.rstrip("/") + "/", route.path.rstrip("/")}:
            response = await client.options(each.replace("{", "x").replace("}", ""))
            assert response.status == 204, (each, await response.text())
            assert allow_of(response.headers) == expected_allow(route.path), each
            assert await response.read() == b""


async def test_every_answer_and_a_405_carry_allow(client: Client, account: Account) -> None:
    paths = await filled_paths(client, account)
    # As in the seed's examples: a job's answer says what else its URL takes.
    response = await client.get(paths["/api/jobs/{job_id}/"], headers=account.headers)
    assert response.status == 200
    assert response.headers["Allow"] == "GET, HEAD, OPTIONS"
    response = await client.post(paths["/api/jobs/{job_id}/restart/"], headers=account.headers)
    assert allow_of(response.headers) == {"POST", "OPTIONS"}
    gate = paths["/api/job/{job_id}"]
    response = await client.get(gate, headers=account.headers)
    assert allow_of(response.headers) == {"GET", "HEAD", "POST", "DELETE", "OPTIONS"}
    # Errors too: a 401 of a routed path, and a 405 (aiohttp's own list, HEAD and OPTIONS in).
    assert allow_of((await client.get(gate)).headers) == expected_allow("/api/job/{job_id}")
    for method, path in (("PUT", "/api/job/{job_id}"), ("PATCH", "/api/job/"),
                         ("DELETE", "/api/jobs/")):
        response = await client.request(method, paths.get(path, path), headers=account.headers)
        assert response.status == 405, (method, path)
        assert allow_of(response.headers) == expected_allow(path), (method, path)
        assert (await response.json())["status"] == 405


async def test_the_logger_answers_head_and_options_on_its_own_port(
    client: Client, account: Account, method_settings: Settings
) -> None:
    paths = await filled_paths(client, account)
    base = f"http://127.0.0.1:{method_settings.logger_port}"
    async with aiohttp.ClientSession() as session:
        for path in ("/api/job/{job_id}/log", "/api/jobs/{job_id}/tasks/{task_id}/logs/"):
            for each in (paths[path], paths[path].rstrip("/") + "/"):
                async with session.options(base + each) as response:
                    assert response.status == 204, each
                    assert allow_of(response.headers) == {"GET", "HEAD", "OPTIONS"}
                async with session.head(base + each, headers=account.headers) as response:
                    assert response.status == 200, each
                    assert response.headers["Content-Type"].startswith("application/json")
                    assert allow_of(response.headers) == {"GET", "HEAD", "OPTIONS"}
