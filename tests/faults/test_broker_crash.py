"""A broker node that dies in the middle of a stream of jobs (SIGKILL, and an orderly
`stop_app`), and a backlog that waits for a fleet restarted twice while it drains: every job
completes, nothing is dead-lettered, and no task runs to its end twice."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from services.dev.servers import LocalServers
from tests.conftest import SettingsFactory
from tests.faults.conftest import private_url
from tests.faults.faults import (
    count_successes,
    dead_letter_counts,
    job_outcomes,
    kill_broker_node,
    start_broker_node,
    wait_all_final,
)
from tests.platform import backend, gateway_for, submit

JOBS = 300
SUBMIT_SECONDS = 30.0
TWO_TASKS = {"tasks": [{"tool": "debug:sleep", "parameters": {"seconds": 0.05}},
                       {"tool": "debug:sleep", "parameters": {"seconds": 0}}]}
FAST = {"heartbeat_seconds": 0.5, "allow_private_networks": True}


async def _outage(servers: LocalServers, how: str, down: float) -> None:
    if how == "kill":
        await kill_broker_node(servers)
        await asyncio.sleep(down)  # the outage itself: the broker is away this long
        await start_broker_node(servers)
    else:
        await servers.rabbitmqctl("stop_app")
        await asyncio.sleep(down)
        await servers.rabbitmqctl("start_app")


@pytest.mark.timeout(400)
@pytest.mark.parametrize("how", ["kill", "stop_app"])
async def test_jobs_submitted_across_a_broker_crash_all_complete_once(
    private_broker: LocalServers, settings_factory: SettingsFactory, aiohttp_client: Any,
    how: str,
) -> None:
    settings = settings_factory(**FAST, amqp_url=private_url(private_broker))
    client, account = await gateway_for(settings, aiohttp_client)
    async with backend(settings, workers=2), count_successes(settings) as successes:
        async def stream() -> None:
            for _ in range(JOBS):
                await submit(client, account, TWO_TASKS)
                await asyncio.sleep(SUBMIT_SECONDS / JOBS)  # a steady stream, not a burst

        submitting = asyncio.create_task(stream())
        await asyncio.sleep(SUBMIT_SECONDS / 3)
        await _outage(private_broker, how, down=18.0)
        back = time.monotonic()
        await submitting
        await wait_all_final(settings, JOBS, within=60.0 - (time.monotonic() - back))
        recovered = time.monotonic() - back
        await asyncio.sleep(1.0)  # late duplicates, if any, would be counted meanwhile
        outcomes = await job_outcomes(settings)
        dead = await dead_letter_counts(settings)
    assert outcomes["Completed"] == JOBS, outcomes
    assert outcomes["extra attempts"] == 0, outcomes
    assert sum(dead.values()) == 0, dead
    assert len(successes) == 2 * JOBS
    assert max(successes.values()) == 1, [k for k, n in successes.items() if n > 1]
    print(f"broker {how} 18 s: {JOBS} jobs completed {recovered:.1f} s after its return")
