"""A broker node that dies in the middle of a stream of jobs (SIGKILL, and an orderly
`stop_app`), and a backlog that waits for a fleet restarted twice while it drains: every job
completes, nothing is dead-lettered, and no task runs to its end twice."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import pytest

from services.dev.servers import LocalServers
from shared.jobs import Status
from shared.messages import JobSubmitted
from shared.runtime import open_broker
from shared.topology import JOBS_EXCHANGE
from tests.conftest import SettingsFactory
from tests.faults.conftest import private_url, worker_process
from tests.faults.faults import (
    assert_each_job_done_once,
    count_successes,
    dead_letter_counts,
    job_outcomes,
    kill_broker_node,
    start_broker_node,
    wait_jobs,
)
from tests.platform import backend, gateway_for, make_account, submit

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
        a_third_in = asyncio.Event()

        async def stream() -> None:
            for submitted in range(1, JOBS + 1):
                await submit(client, account, TWO_TASKS)
                if submitted == JOBS // 3:
                    a_third_in.set()
                await asyncio.sleep(SUBMIT_SECONDS / JOBS)  # a steady stream, not a burst

        submitting = asyncio.create_task(stream())
        # The broker dies a third of the way into the stream, however fast the machine is.
        await asyncio.wait_for(a_third_in.wait(), 2 * SUBMIT_SECONDS)
        await _outage(private_broker, how, down=18.0)
        back = time.monotonic()
        await submitting
        await wait_jobs(settings, JOBS, within=60.0 - (time.monotonic() - back))
        recovered = time.monotonic() - back
        await assert_each_job_done_once(settings, successes, JOBS)
    assert len(successes) == 2 * JOBS
    print(f"broker {how} 18 s: {JOBS} jobs completed {recovered:.1f} s after its return")


@pytest.mark.timeout(400)
async def test_a_backlog_survives_a_fleet_restarted_twice_while_it_drains(
    private_broker: LocalServers, settings_factory: SettingsFactory, tmp_path: Path,
) -> None:
    """1,000 jobs queued while no worker runs; the fleet (two worker processes) then stopped
    with SIGTERM and started again twice while it drains, as a rolling deploy does."""
    settings = settings_factory(**FAST, amqp_url=private_url(private_broker))
    account = await make_account(settings)
    backlog = 1000
    async with backend(settings, workers=0, logger=False):
        async with open_broker(settings, "producer", 1) as broker:
            await broker.publisher.publish_many(
                (JOBS_EXCHANGE, "job.submitted", JobSubmitted.model_validate(
                    {"job_id": f"backlog{index:05d}", "organization_id": account.organization_id,
                     "spec": TWO_TASKS}))
                for index in range(backlog))
        await wait_jobs(settings, backlog, within=60, statuses=[int(Status.QUEUED)])
        for fleet in range(3):
            async with worker_process(settings, tmp_path / f"a{fleet}.log"), \
                    worker_process(settings, tmp_path / f"b{fleet}.log"):
                if fleet < 2:  # a restart while jobs are running: both workers get SIGTERM
                    await wait_jobs(settings, (fleet + 1) * backlog // 3, within=120)
                else:
                    drained = await wait_jobs(settings, backlog, within=180)
        outcomes = await job_outcomes(settings)
        dead = await dead_letter_counts(settings)
    assert outcomes["Completed"] == backlog, outcomes
    assert sum(dead.values()) == 0, dead
    print(f"backlog of {backlog} jobs: drained {drained:.1f} s after the second restart, "
          f"{outcomes['extra attempts']} tasks handed back by a stopping worker and retried")
