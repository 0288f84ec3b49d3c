"""The platform inside the test's event loop: the gateway app on a test server, and the
scheduler, logger and workers as tasks (real RabbitMQ, MongoDB and S3 underneath)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Coroutine
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestClient

from services.logger.main import serve as serve_logger
from services.scheduler.main import serve as serve_scheduler
from services.worker.main import serve as serve_worker
from shared.accounts import ensure_account, new_api_key
from shared.settings import Settings
from shared.store import open_store

FINAL_STATUSES = {2, 3, 4}
Client = TestClient[web.Request, web.Application]


@asynccontextmanager
async def service(
    run: Any, settings: Settings, *args: Any
) -> AsyncIterator[None]:
    """Run one service's `serve` as a task until the block ends."""
    stop, ready = asyncio.Event(), asyncio.Event()
    body: Coroutine[Any, Any, None] = run(settings, *args, stop=stop, ready=ready)
    task = asyncio.create_task(body)
    waiter = asyncio.create_task(ready.wait())
    await asyncio.wait({task, waiter}, timeout=30, return_when=asyncio.FIRST_COMPLETED)
    if task.done():
        waiter.cancel()
        task.result()  # raises what stopped it
        raise AssertionError("service ended before it was ready")
    if not ready.is_set():
        raise AssertionError("service not ready within 30 s")
    try:
        yield
    finally:
        stop.set()
        await asyncio.wait_for(task, 30)


@asynccontextmanager
async def backend(
    settings: Settings, *, workers: int = 1, region: str = "local", logger: bool = True
) -> AsyncIterator[None]:
    """Scheduler, logger and `workers` workers of `region`."""
    async with AsyncExitStack() as stack:
        await stack.enter_async_context(service(serve_scheduler, settings))
        if logger:
            await stack.enter_async_context(service(serve_logger, settings))
        for _ in range(workers):
            await stack.enter_async_context(service(serve_worker, settings, region))
        yield


@dataclass
class Account:
    key: str
    organization_id: str
    organization: str
    user: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"api-key {self.key}"}


async def make_account(
    settings: Settings, organization: str = "acme", user: str = "alice",
    roles: tuple[str, ...] = ("CONFIG",),
) -> Account:
    key = new_api_key()
    async with open_store(settings, "test") as store:
        made = await ensure_account(store, organization, user, key, roles=list(roles))
    return Account(key, made["organization"]["_id"], organization, user)


async def gateway_for(settings: Settings, aiohttp_client: Any) -> tuple[Client, Account]:
    """A gateway on a test server for `settings`, and an account to call it with."""
    from services.gateway.app import create_app

    client: Client = await aiohttp_client(create_app(settings))
    return client, await make_account(settings)


async def submit(client: Client, account: Account, job: dict[str, Any]) -> dict[str, Any]:
    response = await client.post("/api/jobs/", json=job, headers=account.headers)
    body: dict[str, Any] = await response.json()
    assert response.status == 201, body
    return body


async def wait_job(
    client: Client, account: Account, job_id: str, statuses: set[int] = FINAL_STATUSES,
    within: float = 30.0,
) -> dict[str, Any]:
    """Poll the job over HTTP until its status is one of `statuses`."""
    deadline = asyncio.get_running_loop().time() + within
    while True:
        response = await client.get(f"/api/jobs/{job_id}/", headers=account.headers)
        body: dict[str, Any] = await response.json()
        assert response.status == 200, body
        if body["status"] in statuses:
            return body
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"job {job_id} still {body['status_text']}: {body}")
        await asyncio.sleep(0.1)
