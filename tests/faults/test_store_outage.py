"""The store killed for longer than a message's attempts last: the scheduler and the logger
hold their messages until it answers again, then carry on; nothing is dead-lettered and no
task runs twice."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from tests.conftest import SettingsFactory
from tests.faults.faults import (
    StoreProcess,
    assert_each_job_done_once,
    count_successes,
    wait_jobs,
)
from tests.platform import backend, gateway_for, submit, wait_job

JOBS = 20


@pytest.mark.timeout(240)
async def test_a_store_outage_holds_messages_and_loses_nothing(
    private_store: StoreProcess, settings_factory: SettingsFactory, aiohttp_client: Any,
) -> None:
    # Three attempts with short pauses: without holding, the events are dead-lettered within
    # about 16 s of the outage (three server-selection timeouts of 5 s).
    settings = settings_factory(heartbeat_seconds=0.5, mongo_url=private_store.url,
                                max_attempts=3)
    client, account = await gateway_for(settings, aiohttp_client)
    task = {"tool": "debug:sleep", "parameters": {"seconds": 1}}
    async with backend(settings, workers=2), count_successes(settings) as successes:
        jobs = [await submit(client, account, {"tasks": [task, task]}) for _ in range(JOBS)]
        await wait_job(client, account, jobs[0]["id"], statuses={1, 2})
        await private_store.kill()
        await asyncio.sleep(25)  # the outage itself
        await private_store.start()
        back = time.monotonic()
        await wait_jobs(settings, JOBS, within=90)
        recovered = time.monotonic() - back
        await assert_each_job_done_once(settings, successes, JOBS)
    print(f"store outage 25 s: {JOBS} jobs completed {recovered:.1f} s after its return")
