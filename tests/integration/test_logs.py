"""Task logs: batched ingest, the two read endpoints (through the gateway's port), and the
rate limits shared by every logger replica."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from services.dev.servers import free_port
from services.gateway.app import create_app
from services.logger.main import serve as serve_logger
from shared.messages import LogEntry
from shared.runtime import Broker, open_broker
from shared.settings import Settings
from shared.store import open_store
from shared.topology import LOGS_EXCHANGE
from tests.conftest import SettingsFactory
from tests.platform import Account, Client, backend, make_account, service, submit, wait_job

# Recent enough that the retention TTL keeps the entries: yesterday, 10:00 UTC.
BASE = (datetime.now(UTC) - timedelta(days=1)).replace(hour=10, minute=0, second=0,
                                                        microsecond=0)
DAY = BASE.strftime("%Y-%m-%d")


@pytest.fixture
def log_settings(settings_factory: SettingsFactory) -> Settings:
    return settings_factory(logger_port=free_port(), log_rate_per_minute=1000,
                            log_rate_per_day=10_000)


@pytest.fixture
async def client(log_settings: Settings, aiohttp_client: Any) -> Client:
    gateway: Client = await aiohttp_client(create_app(log_settings))
    return gateway


@pytest.fixture
async def account(log_settings: Settings) -> Account:
    return await make_account(log_settings)


@pytest.fixture
async def broker(log_settings: Settings) -> AsyncIterator[Broker]:
    async with open_broker(log_settings, "test", prefetch=1) as value:
        yield value


async def queued_job(client: Client, account: Account, tasks: int = 1) -> str:
    """A job with `tasks` tasks (no backend runs it): a target for published entries."""
    job = await submit(client, account, {"tasks": [
        {"tool": "debug:sleep", "parameters": {"seconds": 0}}] * tasks})
    return str(job["id"])


async def publish_entries(broker: Broker, job_id: str, times: list[datetime],
                          task_id: int = 1) -> None:
    await broker.publisher.publish_many(
        (LOGS_EXCHANGE, "log.local", LogEntry(job_id=job_id, task_id=task_id, attempt=1,
                                              seq=index, timestamp=moment,
                                              message=f"line {index}"))
        for index, moment in enumerate(times)
    )


async def wait_stored(settings: Settings, job_id: str, count: int) -> None:
    async with open_store(settings, "test") as store:
        deadline = asyncio.get_running_loop().time() + 20
        while await store.logs.count_documents({"job_id": job_id}) < count:
            assert asyncio.get_running_loop().time() < deadline, "entries never stored"
            await asyncio.sleep(0.05)


async def get(client: Client, account: Account, path: str) -> tuple[int, Any, Any]:
    response = await client.get(path, headers=account.headers)
    return response.status, await response.json(), response.headers


async def test_lines_a_tool_writes_come_back_in_order(
    log_settings: Settings, client: Client, account: Account
) -> None:
    messages = [f"step {i}" for i in range(25)]
    async with backend(log_settings):
        job = await submit(client, account, {"tasks": [
            {"tool": "debug:log", "parameters": {"messages": messages}}]})
        await wait_job(client, account, job["id"])
        await wait_stored(log_settings, job["id"], 25)
        status, body, headers = await get(client, account, f"/api/jobs/{job['id']}/tasks/1/logs/")
    assert status == 200, body
    assert [line["message"] for line in body["logs"]] == messages
    now = time.time()
    assert all(isinstance(line["timestamp"], int) for line in body["logs"])
    assert all(now - 60 < line["timestamp"] <= now + 1 for line in body["logs"])
    assert body["next"] is None
    assert headers["RateLimit-Policy"] == "1000;w=60, 10000;w=86400"


async def test_limit_and_cursor_page_through_a_long_log(
    log_settings: Settings, client: Client, account: Account, broker: Broker
) -> None:
    job_id = await queued_job(client, account)
    async with service(serve_logger, log_settings):
        await publish_entries(broker, job_id, [BASE + timedelta(seconds=i) for i in range(7)])
        await wait_stored(log_settings, job_id, 7)
        seen: list[str] = []
        path = f"/api/jobs/{job_id}/tasks/1/logs/?limit=3"
        while True:
            status, body, _ = await get(client, account, path)
            assert status == 200, body
            seen += [line["message"] for line in body["logs"]]
            if body["next"] is None:
                break
            path = f"/api/jobs/{job_id}/tasks/1/logs/?limit=3&cursor={body['next']}"
    assert seen == [f"line {i}" for i in range(7)]


async def test_job_log_newest_first_with_from_and_to(
    log_settings: Settings, client: Client, account: Account, broker: Broker
) -> None:
    job_id = await queued_job(client, account, tasks=2)
    times = [BASE + timedelta(hours=i) for i in range(5)]  # 10:00 .. 14:00 UTC
    async with service(serve_logger, log_settings):
        await publish_entries(broker, job_id, times)
        await wait_stored(log_settings, job_id, 5)
        base = f"/api/job/{job_id}/log"
        status, everything, _ = await get(client, account, base)
        assert status == 200
        assert [e["message"] for e in everything] == [f"line {i}" for i in range(4, -1, -1)]
        assert everything[0]["date"] == f"{DAY}T14:00:00.000Z"
        cases = {
            f"?from={DAY}T11:00:00Z&to={DAY}T13:00:00Z": [3, 2, 1],
            f"?from={DAY}T11:00:00": [4, 3, 2, 1],  # no offset: UTC
            f"?from={DAY}T14:00:00%2B02:00": [4, 3, 2],  # 12:00 UTC
            f"?to={DAY}T13:00:00+02:00": [1, 0],  # '+' arrives as a space: still meant
            f"?from={DAY}T15:00:00Z": [],
        }
        for query, expected in cases.items():
            status, body, _ = await get(client, account, base + query)
            assert status == 200, (query, body)
            assert [e["message"] for e in body] == [f"line {i}" for i in expected], query


@pytest.mark.parametrize(
    ("path", "field"),
    [("/api/job/{job}/log?from=yesterday", "from"),
     ("/api/job/{job}/log?to=2012-13-01T00:00:00", "to"),
     ("/api/job/{job}/log?from=2012-09-02T00:00:00Z&to=2012-09-01T00:00:00Z", "from"),
     ("/api/job/{job}/log?from=0001-01-01T00:00:00%2B01:00", "from"),
     ("/api/job/{job}/log?to=9999-12-31T23:59:59-01:00", "to"),
     ("/api/jobs/{job}/tasks/1/logs/?limit=0", "limit"),
     ("/api/jobs/{job}/tasks/1/logs/?limit=ten", "limit"),
     ("/api/jobs/{job}/tasks/1/logs/?cursor=%%%", "cursor"),
     ("/api/jobs/{job}/tasks/1/logs/?cursor=bm90LWEtbnVtYmVy", "cursor")],
)
async def test_bad_parameters_are_400(
    log_settings: Settings, client: Client, account: Account, path: str, field: str
) -> None:
    job_id = await queued_job(client, account)
    async with service(serve_logger, log_settings):
        status, body, _ = await get(client, account, path.format(job=job_id))
    assert status == 400, body
    assert body["errors"][0]["field"] == field


async def test_unknown_task_and_another_organizations_job_are_404(
    log_settings: Settings, client: Client, account: Account
) -> None:
    job_id = await queued_job(client, account)
    stranger = await make_account(log_settings, organization="globex", user="bob")
    async with service(serve_logger, log_settings):
        for who, path in [(account, f"/api/jobs/{job_id}/tasks/9/logs/"),
                          (stranger, f"/api/jobs/{job_id}/tasks/1/logs/"),
                          (stranger, f"/api/job/{job_id}/log")]:
            status, body, _ = await get(client, who, path)
            assert status == 404, (path, body)
        response = await client.get(f"/api/job/{job_id}/log")
        assert response.status == 401


async def test_entries_published_while_the_logger_is_down_are_stored_later(
    log_settings: Settings, client: Client, account: Account, broker: Broker
) -> None:
    job_id = await queued_job(client, account)
    await publish_entries(broker, job_id, [BASE] * 3)
    await publish_entries(broker, job_id, [BASE] * 3)  # redelivered duplicates
    async with service(serve_logger, log_settings):
        await wait_stored(log_settings, job_id, 3)
        status, body, _ = await get(client, account, f"/api/jobs/{job_id}/tasks/1/logs/")
    assert status == 200
    assert [line["message"] for line in body["logs"]] == ["line 0", "line 1", "line 2"]


async def test_the_21st_call_in_a_minute_is_429_and_other_routes_are_not_limited(
    settings_factory: SettingsFactory, aiohttp_client: Any
) -> None:
    settings = settings_factory(logger_port=free_port())
    client: Client = await aiohttp_client(create_app(settings))
    account = await make_account(settings)
    job_id = await queued_job(client, account)
    async with service(serve_logger, settings):
        paths = [f"/api/jobs/{job_id}/tasks/1/logs/", f"/api/job/{job_id}/log"]
        started = time.time()
        for call in range(20):
            status, body, headers = await get(client, account, paths[call % 2])
            assert status == 200, (call, body)
            assert headers["RateLimit-Remaining"] == str(19 - call)
            # A moving window: a slot frees 60 s after the first call, wherever it fell.
            assert 60 - (time.time() - started) <= int(headers["RateLimit-Reset"]) <= 60
        status, body, headers = await get(client, account, paths[0])
        waited = time.time() - started
    assert status == 429
    assert "20 per minute" in body["error"]
    assert 60 - waited <= int(headers["Retry-After"]) <= 60
    assert headers["RateLimit-Reset"] == headers["Retry-After"]
    assert headers["RateLimit-Limit"] == "20"
    assert headers["RateLimit-Remaining"] == "0"
    status, _, _ = await get(client, account, f"/api/jobs/{job_id}/")
    assert status == 200


async def test_daily_quota(settings_factory: SettingsFactory, aiohttp_client: Any) -> None:
    settings = settings_factory(logger_port=free_port(), log_rate_per_day=5)
    client: Client = await aiohttp_client(create_app(settings))
    account = await make_account(settings)
    job_id = await queued_job(client, account)
    async with service(serve_logger, settings):
        statuses = [(await get(client, account, f"/api/job/{job_id}/log"))[0] for _ in range(5)]
        status, body, headers = await get(client, account, f"/api/job/{job_id}/log")
    assert statuses == [200] * 5
    assert status == 429
    assert "5 per day" in body["error"]
    assert 86_400 - 60 <= int(headers["Retry-After"]) <= 86_400


async def test_counters_are_shared_by_two_logger_instances(
    settings_factory: SettingsFactory, aiohttp_client: Any
) -> None:
    first = settings_factory(logger_port=free_port(), log_rate_per_minute=10)
    second = first.model_copy(update={"logger_port": free_port()})
    clients: list[Client] = [await aiohttp_client(create_app(s)) for s in (first, second)]
    account = await make_account(first)
    job_id = await queued_job(clients[0], account)
    async with service(serve_logger, first), service(serve_logger, second):
        statuses = [(await get(clients[i % 2], account, f"/api/job/{job_id}/log"))[0]
                    for i in range(11)]
    assert statuses == [200] * 10 + [429]


async def test_gateway_answers_502_when_no_logger_runs(
    log_settings: Settings, client: Client, account: Account
) -> None:
    job_id = await queued_job(client, account)
    status, body, _ = await get(client, account, f"/api/job/{job_id}/log")
    assert status == 502
    assert "does not answer" in body["error"]
