"""Causing faults for real: a broker node killed outright and started again on its data,
a store process killed and started again, and counting what a run lost, stuck or did twice."""

from __future__ import annotations

import asyncio
import json
import os
import signal
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

import aio_pika

from services.dev.processes import ChildProcess, Slot
from services.dev.servers import (
    LocalServers,
    free_port,
    port_answers,
    venv_script,
    wait_until,
)
from shared.broker import open_amqp
from shared.jobs import Status
from shared.settings import Settings
from shared.store import open_store
from shared.topology import EVENTS_EXCHANGE, Topology, dead_queue


def _node_port(servers: LocalServers) -> int:
    return int(servers.rabbitmq_env["RABBITMQ_NODE_PORT"])


def _broker_slot(servers: LocalServers) -> Slot:
    return next(slot for slot in servers.slots if slot.spec.name == "rabbitmq-server")


async def kill_broker_node(servers: LocalServers) -> None:
    """SIGKILL the private node and everything in its process group: no clean shutdown."""
    node = _broker_slot(servers).child
    os.killpg(node.pid, signal.SIGKILL)
    await node.process.wait()


async def start_broker_node(servers: LocalServers) -> None:
    """Start the private node again on its own data directory, name and port."""
    slot = _broker_slot(servers)
    slot.child = await slot.spec.start()
    port = _node_port(servers)
    await wait_until("rabbitmq-server", slot.child,
                     lambda: port_answers("127.0.0.1", port), 90)


@dataclass
class StoreProcess:
    """An nx-27017 of one test, on a fixed port, to kill and start again on its data."""

    data_dir: Path
    port: int = field(default_factory=free_port)
    child: ChildProcess | None = None

    @property
    def url(self) -> str:
        return f"mongodb://127.0.0.1:{self.port}"

    async def start(self) -> None:
        self.child = await ChildProcess.start(
            "nx-27017", [venv_script("nx-27017"), "--data-dir", str(self.data_dir / "mongo"),
                         "--host", "127.0.0.1", "--port", str(self.port)],
            log_path=self.data_dir / "nx-27017.out")
        await wait_until("nx-27017", self.child,
                         lambda: port_answers("127.0.0.1", self.port), 30)

    async def kill(self) -> None:
        if self.child is not None:
            os.killpg(self.child.pid, signal.SIGKILL)
            await self.child.process.wait()
            self.child = None

    async def stop(self) -> None:
        if self.child is not None:
            await self.child.stop()
            self.child = None


@asynccontextmanager
async def store_process(data_dir: Path) -> AsyncIterator[StoreProcess]:
    (data_dir / "mongo").mkdir(parents=True, exist_ok=True)
    store = StoreProcess(data_dir)
    await store.start()
    try:
        yield store
    finally:
        await store.stop()


@asynccontextmanager
async def count_successes(settings: Settings) -> AsyncIterator[Counter[tuple[str, int]]]:
    """Every `task.succeeded` published meanwhile, counted once per message id by task: a
    count above 1 is a task that ran to its end twice. (A durable queue of the test's own,
    so that a broker restart loses none of them.)"""
    counts: Counter[tuple[str, int]] = Counter()
    seen: set[str] = set()

    async def on_message(message: aio_pika.abc.AbstractIncomingMessage) -> None:
        async with message.process():
            body = json.loads(message.body)
            if message.message_id not in seen:
                seen.add(message.message_id or "")
                counts[(body["job_id"], body["task_id"])] += 1

    async with open_amqp(settings, "test-success-counter") as connection:
        channel = await connection.channel()
        queue = await channel.declare_queue(
            f"{settings.amqp_prefix}test.successes", durable=True)
        exchange = await channel.get_exchange(f"{settings.amqp_prefix}{EVENTS_EXCHANGE}")
        await queue.bind(exchange, "task.succeeded")
        await queue.consume(on_message)
        try:
            yield counts
        finally:
            await queue.delete(if_unused=False, if_empty=False)


async def dead_letter_counts(settings: Settings) -> dict[str, int]:
    """Messages in each dead-letter queue of the platform."""
    counts: dict[str, int] = {}
    async with open_amqp(settings, "test-dead-count") as connection:
        channel = await connection.channel()
        for queue in Topology(settings.amqp_prefix, tuple(settings.regions)).consumed_queues:
            declared = await channel.declare_queue(
                f"{settings.amqp_prefix}{dead_queue(queue)}", passive=True)
            counts[dead_queue(queue)] = declared.declaration_result.message_count or 0
    return counts


async def job_outcomes(settings: Settings) -> Counter[str]:
    """How many jobs ended in each status, and how many task attempts beyond the first."""
    outcomes: Counter[str] = Counter()
    async with open_store(settings, "test") as store:
        async for job in store.jobs.find({}):
            outcomes[Status(job["status"]).text] += 1
            outcomes["extra attempts"] += sum(t["attempt"] - 1 for t in job["tasks"].values())
    return outcomes


FINAL = [int(s) for s in Status if s.is_final]


async def wait_jobs(settings: Settings, count: int, within: float,
                    statuses: list[int] = FINAL) -> float:
    """Seconds until `count` jobs have one of `statuses` (default: final); fails with some
    of those left after `within`."""
    loop = asyncio.get_running_loop()
    began = loop.time()
    async with open_store(settings, "test") as store:
        while True:
            done = await store.jobs.count_documents({"status": {"$in": statuses}})
            if done >= count:
                return loop.time() - began
            if loop.time() - began > within:
                left = await store.jobs.find({"status": {"$nin": statuses}}).to_list(5)
                raise AssertionError(f"{count - done} jobs short after {within:g} s, "
                                     f"e.g. {left}")
            await asyncio.sleep(0.5)


async def assert_each_job_done_once(
    settings: Settings, successes: Counter[tuple[str, int]], jobs: int
) -> None:
    """`jobs` jobs Completed, each task in one attempt, nothing dead-lettered, and no task
    reported done twice. Call it while `count_successes` still counts: late duplicates, if
    any, get a second to arrive."""
    await asyncio.sleep(1.0)  # an observation window, not a wait for an event
    outcomes = await job_outcomes(settings)
    dead = await dead_letter_counts(settings)
    assert outcomes["Completed"] == jobs, outcomes
    assert outcomes["extra attempts"] == 0, outcomes
    assert sum(dead.values()) == 0, dead
    assert max(successes.values()) == 1, [k for k, n in successes.items() if n > 1]
