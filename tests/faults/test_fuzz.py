"""Property-based: no input to job submission or the log endpoints gives a 5xx."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from services.dev.servers import free_port
from services.gateway.app import create_app
from services.logger.main import serve as serve_logger
from shared.toolspecs import PARAMETERS
from tests.conftest import SettingsFactory
from tests.platform import Account, Client, make_account, service, submit

FUZZ = settings(max_examples=60, deadline=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture,
                                       HealthCheck.too_slow])
scalars = (st.none() | st.booleans() | st.integers(min_value=-(2**70), max_value=2**70)
           | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=30))
values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=4)
                      | st.dictionaries(st.text(max_size=12), inner, max_size=4), max_leaves=16)
tools = st.sampled_from([*PARAMETERS, "media:none", "", "x"]) | st.text(max_size=12)
tasks = st.fixed_dictionaries({"tool": tools | values}, optional={"parameters": values})
jobs = st.fixed_dictionaries(
    {"tasks": st.lists(tasks, max_size=3) | values},
    optional={"region": values, "tags": values, "notify": values, "organization": values,
              "organization_id": values, "job_bundle": values, "job_bundle_id": values},
) | values


@pytest.fixture
async def gateway(
    settings_factory: SettingsFactory, aiohttp_client: Any
) -> AsyncIterator[tuple[Client, Account, str]]:
    """One gateway, account, queued job and logger for every example of a test (fixtures
    are made once per test, not per example: that is what we want here)."""
    fuzz_settings = settings_factory(logger_port=free_port(), log_rate_per_minute=10_000,
                                     log_rate_per_day=10_000)
    client: Client = await aiohttp_client(create_app(fuzz_settings))
    account = await make_account(fuzz_settings)
    job = await submit(client, account, {"tasks": [{"tool": "debug:sleep"}]})
    async with service(serve_logger, fuzz_settings):
        yield client, account, job["id"]


@FUZZ
@given(body=jobs)
async def test_job_submission_never_fails_with_5xx(
    body: Any, gateway: tuple[Client, Account, str]
) -> None:
    client, account, _ = gateway
    response = await client.post("/api/jobs/", data=json.dumps(body),
                                 headers={**account.headers, "Content-Type": "application/json"})
    assert response.status < 500, await response.text()


queries = st.dictionaries(st.sampled_from(["from", "to", "limit", "cursor", "x"]),
                          st.text(max_size=40), max_size=4)


@FUZZ
@given(query=queries, task=st.text(max_size=8))
async def test_log_endpoints_never_fail_with_5xx(
    query: dict[str, str], task: str, gateway: tuple[Client, Account, str]
) -> None:
    client, account, job_id = gateway
    text = "&".join(f"{quote(k)}={quote(v)}" for k, v in query.items())
    for path in (f"/api/jobs/{job_id}/tasks/{quote(task, safe='')}/logs/?{text}",
                 f"/api/job/{job_id}/log?{text}"):
        response = await client.get(path, headers=account.headers)
        assert response.status < 500, (path, await response.text())
