"""Fault tests cause the fault for real: killed and frozen worker processes, a broker node
stopped and started again, a consumer timeout shorter than the task."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import aiohttp
import pytest
import pytest_asyncio
from aiohttp import web

from services.dev.processes import ChildProcess
from services.dev.servers import LocalServers, free_port
from shared.health import serve_app
from shared.settings import Settings, to_env_lines
from tests.faults.faults import StoreProcess, store_process
from tests.processes import conveyor, wait_status

# The private node closes a channel whose delivery stays unacked for 2 s, checked every
# second (RabbitMQ's defaults: 30 min, checked every minute).
SHORT_CONSUMER_TIMEOUT = "[{rabbit, [{consumer_timeout, 2000}, {channel_tick_interval, 1000}]}]."


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def private_broker(
    tmp_path_factory: pytest.TempPathFactory,
) -> AsyncIterator[LocalServers]:
    """A RabbitMQ node of the tests' own, to stop and start without disturbing others."""
    servers = LocalServers()
    await servers.start_rabbitmq(tmp_path_factory.mktemp("rabbit"), SHORT_CONSUMER_TIMEOUT)
    yield servers
    await servers.stop()


@pytest.fixture
async def private_store(tmp_path: Path) -> AsyncIterator[StoreProcess]:
    """An nx-27017 of one test, to kill and start again on its port and data. Requested
    before `settings_factory`, so it is still up when the test's database is dropped."""
    async with store_process(tmp_path / "store") as store:
        yield store


def private_url(servers: LocalServers) -> str:
    return f"amqp://guest:guest@127.0.0.1:{servers.rabbitmq_env['RABBITMQ_NODE_PORT']}/"


def env_for(settings: Settings) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CONVEYOR_")}
    for line in to_env_lines(settings):
        name, _, value = line.partition("=")
        env[name] = value
    env["CONVEYOR_LOG_FORMAT"] = "json"
    return env


@asynccontextmanager
async def worker_process(settings: Settings, log: Path) -> AsyncIterator[ChildProcess]:
    port = free_port()
    async with conveyor(["worker", "--port", str(port)], env_for(settings), log,
                        name=log.stem) as child:
        await wait_status(f"http://127.0.0.1:{port}/readyz", 200, child)
        yield child


@pytest.fixture
async def slow_server() -> AsyncIterator[str]:
    """HTTP on loopback: /slow streams 10 chunks over about 4 s without a length;
    /flaky answers 503 twice, then the file; /missing is a 404."""
    calls = {"flaky": 0}
    app = web.Application()

    async def slow(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse()
        await response.prepare(request)
        for index in range(10):
            await response.write(f"chunk {index}\n".encode())
            await asyncio.sleep(0.4)
        await response.write_eof()
        return response

    async def flaky(_: web.Request) -> web.Response:
        calls["flaky"] += 1
        if calls["flaky"] <= 2:
            raise web.HTTPServiceUnavailable()
        return web.Response(body=b"finally")

    app.router.add_get("/slow", slow)
    app.router.add_get("/flaky", flaky)
    async with serve_app(app, "127.0.0.1", 0) as port:
        yield f"http://127.0.0.1:{port}"


async def fetch_text(url: str) -> str:
    async with aiohttp.ClientSession() as session, session.get(url) as response:
        return await response.text()
