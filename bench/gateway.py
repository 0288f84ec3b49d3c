"""`gateway_submit`: `POST /api/jobs/` requests per second (validated, stored, announced with
a publisher confirm) against a bare aiohttp handler echoing the same JSON."""

from __future__ import annotations

import asyncio
import sys
import time
from typing import Any

import aiohttp
from pymongo import AsyncMongoClient

from bench.common import row
from bench.dispatch import env_for, percentile, processes, wait_for
from services.dev.servers import free_port
from shared.accounts import ensure_account, new_api_key
from shared.settings import Settings
from shared.store import Document, Store

CONCURRENCY = 16
JOB = {"tags": ["bench"], "tasks": [{"tool": "debug:sleep", "parameters": {"seconds": 0}}]}


async def load(url: str, key: str, count: int) -> tuple[float, float]:
    """(requests per second, p99 latency in ms) for `count` POSTs, CONCURRENCY at a time."""
    latencies: list[float] = []
    queue: asyncio.Queue[int] = asyncio.Queue()
    for index in range(count):
        queue.put_nowait(index)
    headers = {"Authorization": f"api-key {key}"}

    async def client(session: aiohttp.ClientSession) -> None:
        while not queue.empty():
            queue.get_nowait()
            started = time.perf_counter()
            async with session.post(f"{url}/api/jobs/", json=JOB, headers=headers) as response:
                await response.read()
                if response.status != 201:
                    raise RuntimeError(f"{url} answered {response.status}")
            latencies.append(time.perf_counter() - started)

    async with aiohttp.ClientSession() as session:
        started = time.perf_counter()
        await asyncio.gather(*(client(session) for _ in range(CONCURRENCY)))
        elapsed = time.perf_counter() - started
    return count / elapsed, percentile(latencies, 0.99) * 1000


async def answers(url: str) -> bool:
    try:
        async with aiohttp.ClientSession() as session, session.get(f"{url}/healthz") as r:
            return r.status < 500
    except aiohttp.ClientError:
        return False


async def run(settings: Settings, count: int) -> list[dict[str, Any]]:
    key = new_api_key()
    client: AsyncMongoClient[Document] = AsyncMongoClient(settings.mongo_url)
    await ensure_account(Store(client, client[settings.mongo_db]), "bench", "bench", key,
                         roles=[])
    ours_port, echo_port = free_port(), free_port()
    ours_url, echo_url = f"http://127.0.0.1:{ours_port}", f"http://127.0.0.1:{echo_port}"
    try:
        async with processes(
            ("gateway", [sys.executable, "-m", "services.cli", "gateway", "--port",
                         str(ours_port)], env_for(settings)),
            ("echo", [sys.executable, "-m", "bench.peers.echo", str(echo_port)],
             env_for(settings)),
        ):
            await wait_for(lambda: answers(ours_url), 60, "the gateway")
            await wait_for(lambda: answers(echo_url), 60, "the echo server")
            await load(ours_url, key, 50)  # warm-up
            ours, ours_p99 = await load(ours_url, key, count)
            echo, echo_p99 = await load(echo_url, key, count)
    finally:
        await client.drop_database(settings.mongo_db)
        await client.close()
    return [row("gateway_submit", ours, "req/s", "aiohttp_echo", echo,
                f"{count} requests, {CONCURRENCY} at a time; p99 {ours_p99:.1f} ms (echo "
                f"{echo_p99:.1f} ms); ours validates, authenticates, stores (outbox) and "
                "publishes with a confirm")]
