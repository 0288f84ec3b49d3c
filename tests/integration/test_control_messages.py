"""`job.control` messages from an internal producer, straight onto RabbitMQ: a stop of a job
no gateway stopped is carried out by the scheduler (the job Cancelled with one conditional
write, and the worker told to interrupt its tool)."""

from __future__ import annotations

import time
from typing import Any

from shared.messages import JobControl
from shared.runtime import open_broker
from shared.topology import JOBS_EXCHANGE
from tests.conftest import SettingsFactory
from tests.platform import backend, gateway_for, submit, wait_job


async def test_a_produced_stop_cancels_the_job_and_interrupts_its_tool(
    settings_factory: SettingsFactory, aiohttp_client: Any
) -> None:
    settings = settings_factory(heartbeat_seconds=0.5, worker_concurrency=1)
    client, account = await gateway_for(settings, aiohttp_client)
    async with backend(settings, logger=False):
        job = await submit(client, account, {"tasks": [
            {"tool": "debug:sleep", "parameters": {"seconds": 60}},
            {"tool": "debug:sleep", "parameters": {"seconds": 0}}]})
        await wait_job(client, account, job["id"], statuses={1})
        async with open_broker(settings, "producer", 1) as broker:
            await broker.publisher.publish(JOBS_EXCHANGE, "job.control", JobControl(
                job_id=job["id"], action="stop"))
        sent = time.monotonic()
        stopped = await wait_job(client, account, job["id"], within=10)
        # The only worker slot is free again only if the 60 s sleep was interrupted.
        follower = await submit(client, account, {"tasks": [
            {"tool": "debug:sleep", "parameters": {"seconds": 0}}]})
        await wait_job(client, account, follower["id"], within=10)
        freed_after = time.monotonic() - sent
    assert stopped["status_text"] == "Cancelled"
    assert [t["status_text"] for t in stopped["tasks"]] == ["Cancelled", "Cancelled"]
    assert stopped["tasks"][0]["error"]["class"] == "Cancelled"
    assert freed_after < 5, freed_after
