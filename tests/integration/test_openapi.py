"""The OpenAPI document: it validates, and the server answers as it says (schemathesis over
every operation, against the platform on real RabbitMQ, MongoDB-protocol and S3 servers)."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from openapi_spec_validator import validate

from services.dev.servers import free_port
from services.gateway.app import create_app
from shared.settings import Settings
from tests.conftest import SettingsFactory
from tests.gateapi import GateApi
from tests.integration.test_gate_api import configured_job, wait_state
from tests.platform import Account, backend, gateway_for, make_account, submit, wait_job

# Each run takes 5-15 s on two cores (about 600-1300 requests); this is its bound.
SCHEMATHESIS_TIMEOUT = 180
MAX_EXAMPLES = 15
CHECKS = ("not_a_server_error", "status_code_conformance", "content_type_conformance",
          "response_schema_conformance", "response_headers_conformance")


async def test_openapi_document_validates(settings: Settings, aiohttp_client: Any) -> None:
    client, _ = await gateway_for(settings, aiohttp_client)
    response = await client.get("/api/openapi.json")
    assert response.status == 200
    validate(await response.json())


# What path parameters name, for the operations whose path matches a pattern.
Ids = dict[str, dict[str, list[str]]]


@dataclass
class Platform:
    base_url: str
    account: Account
    # Seeded ids, for requests to reach more than a 404.
    ids: Ids
    document: dict[str, Any]


async def seed(client: TestClient[Any, Any], account: Account) -> Ids:
    """A Completed job of the Jobs API, and GATE jobs READY, COMPLETED and RESERVED."""
    core = await submit(client, account, {"tasks": [
        {"tool": "debug:log", "parameters": {"messages": ["one", "two"]}}]})
    await wait_job(client, account, core["id"])
    api = GateApi(client, account, xml=False)
    completed = await configured_job(api, "completed", [{"type": "JSON"}])
    assert (await api.control(completed, "start"))[0] == 204
    await wait_state(api, completed, "COMPLETED")
    ready = await configured_job(api, "ready", [{"type": "GATE_XML"}])
    reserved = (await api.ok("POST", "/api/job", "job", {"name": "reserved"}, status=201))["id"]
    gate_jobs = [ready, completed, reserved]
    bundles = [bundle["id"] for bundle in await api.ok("GET", "/api/data")]
    # configured_job adds the input first: spec 1; then the output: spec 2.
    return {
        "^/api/jobs/": {"job_id": [core["id"], completed], "task_id": ["1"]},
        "^/api/job/[^/]+/input": {"job_id": gate_jobs, "spec_id": ["1"]},
        "^/api/job/[^/]+/output": {"job_id": gate_jobs, "spec_id": ["2"]},
        "^/api/job/[^/]+(?:$|/(?!input|output))": {"job_id": gate_jobs},
        "^/api/data/": {"bundle_id": bundles},
    }


@pytest.fixture
async def platform(settings_factory: SettingsFactory) -> AsyncIterator[Platform]:
    """The gateway on a real port, with the scheduler, the logger and a worker behind it."""
    settings = settings_factory(logger_port=free_port(), log_rate_per_minute=10_000,
                                log_rate_per_day=10_000)
    async with backend(settings):
        server = TestServer(create_app(settings), host="127.0.0.1", port=free_port())
        client: TestClient[Any, Any] = TestClient(server)
        await client.start_server()
        try:
            account = await make_account(settings)
            ids = await seed(client, account)
            document = await (await client.get("/api/openapi.json")).json()
            yield Platform(str(server.make_url("")).rstrip("/"), account, ids, document)
        finally:
            await client.close()


def config(ids: Ids, draw: bool) -> str:
    """schemathesis.toml: path parameters drawn mostly from `ids` (`draw`; the fuzzing
    phase honours that), or each set to the first of them (the coverage phase takes only
    such values); and nothing written beside it (no example database, no cache)."""
    lines = ["[generation]", 'database = "none"', "", "[cache]", "enabled = false"]
    dictionaries = []
    for index, (pattern, parameters) in enumerate(ids.items()):
        values = []
        for name, given in parameters.items():
            if draw:
                dictionaries += ["", f"[dictionaries.d{index}_{name}]",
                                 f"values = {json.dumps(given)}"]
                value = f'{{ dictionary = "d{index}_{name}", probability = 0.9 }}'
            else:
                value = json.dumps(given[0])
            values.append(f'"path.{name}" = {value}')
        lines += ["", "[[operations]]", f"include-path-regex = {json.dumps(pattern)}",
                  f"parameters = {{ {', '.join(values)} }}"]
    return "\n".join(lines + dictionaries) + "\n"


def strict(schema: Any) -> Any:
    """`schema` with each object that lists its properties closed to others. The document
    leaves them open (a client should ignore keys it does not know); the test holds the
    server to documenting every key it sends."""
    if isinstance(schema, list):
        return [strict(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    tightened = {key: strict(value) for key, value in schema.items()}
    if isinstance(schema.get("properties"), dict):
        tightened.setdefault("additionalProperties", False)
    return tightened


async def schemathesis(platform: Platform, folder: Path, phase: str, *options: str) -> None:
    """Run schemathesis's `phase` over every operation of the (strict) document; fail with
    its report when a check failed. The requests and answers are kept in `folder`."""
    folder.mkdir()
    document = {**platform.document, "components": {
        **platform.document["components"],
        "schemas": strict(platform.document["components"]["schemas"])}}
    (folder / "openapi.json").write_text(json.dumps(document))
    (folder / "schemathesis.toml").write_text(config(platform.ids, draw=phase == "fuzzing"))
    command = [
        sys.executable, "-m", "schemathesis.cli", "--config-file", "schemathesis.toml", "run",
        "openapi.json", "--url", platform.base_url,
        "--header", f"Authorization: api-key {platform.account.key}",
        "--checks", ",".join(CHECKS), "--phases", phase, "--max-examples", str(MAX_EXAMPLES),
        "--seed", "1", "--workers", "1", "--no-color", "--report", "har", *options,
    ]
    child = await asyncio.create_subprocess_exec(
        *command, cwd=folder, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT, env={**os.environ, "NO_COLOR": "1"},
    )
    try:
        output, _ = await asyncio.wait_for(child.communicate(), SCHEMATHESIS_TIMEOUT)
    finally:
        if child.returncode is None:
            child.kill()
            await child.wait()
    assert child.returncode == 0, f"{folder}\n{output.decode()[-20000:]}"


@pytest.mark.timeout(3 * SCHEMATHESIS_TIMEOUT)
async def test_every_operation_answers_as_documented(platform: Platform, tmp_path: Path) -> None:
    await schemathesis(platform, tmp_path / "fuzzing", "fuzzing")
    await schemathesis(platform, tmp_path / "coverage", "coverage")
    # The answers in XML too, where the document says a route offers them.
    await schemathesis(platform, tmp_path / "xml", "fuzzing", "--header",
                       "Accept: application/xml")
