"""A GATE Cloud-style job's own log lines reach the logs collection through the logger, its
one writer, as messages: the gateway never writes there, and the job log shows them as
before (newest first, the same text)."""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Any

from services.dev.servers import free_port
from services.gateway.app import create_app
from services.logger.ingest import position
from services.logger.main import serve as serve_logger
from shared.store import open_store
from tests.conftest import SettingsFactory
from tests.gateapi import GateApi
from tests.platform import Client, make_account, service


async def test_gate_log_lines_arrive_through_the_logger(
    settings_factory: SettingsFactory, aiohttp_client: Any
) -> None:
    settings = settings_factory(logger_port=free_port(), log_rate_per_minute=10_000,
                                log_rate_per_day=10_000)
    client: Client = await aiohttp_client(create_app(settings))
    api = GateApi(client, await make_account(settings), xml=False)
    job = (await api.ok("POST", "/api/job", "job", {"name": "logged"}, status=201))["id"]
    assert (await api.call("DELETE", f"/api/job/{job}"))[0] == 204
    async with open_store(settings, "test") as store:
        # No logger runs yet: the lines wait in its queue, not in the store.
        assert await store.logs.count_documents({"job_id": job}) == 0
        async with service(serve_logger, settings):
            deadline = asyncio.get_running_loop().time() + 10
            while len(log := await api.ok("GET", f"/api/job/{job}/log")) < 2:
                assert asyncio.get_running_loop().time() < deadline, log
                await asyncio.sleep(0.1)
        stored = await store.logs.find({"job_id": job}).sort("position", 1).to_list()
    assert [entry["message"] for entry in log] == ["job deleted", "job 'logged' created"]
    dates = [datetime.fromisoformat(entry["date"]) for entry in log]
    assert dates == sorted(dates, reverse=True)
    assert [(e["task_id"], e["attempt"]) for e in stored] == [(0, 1), (0, 1)]
    assert [e["position"] for e in stored] == [position(1, e["seq"]) for e in stored]
    assert [e["message"] for e in stored] == ["job 'logged' created", "job deleted"]

