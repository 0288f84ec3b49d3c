"""The exchanges and queues of docs/architecture.md ("Messages and queues"), their
dead-letter and retry-delay companions, and the one function that declares them
(idempotently: declaring twice changes nothing).

Every name can carry a prefix (`CONVEYOR_AMQP_PREFIX`) so that tests and side-by-side
instances on one broker never see each other's messages.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import aio_pika
from aio_pika.abc import AbstractChannel

JOBS_EXCHANGE = "conveyor.jobs"
TASKS_EXCHANGE = "conveyor.tasks"
EVENTS_EXCHANGE = "conveyor.events"
LOGS_EXCHANGE = "conveyor.logs"
CONTROL_EXCHANGE = "conveyor.control"
DEAD_EXCHANGE = "conveyor.dead"

EXCHANGES = (JOBS_EXCHANGE, TASKS_EXCHANGE, EVENTS_EXCHANGE, LOGS_EXCHANGE, CONTROL_EXCHANGE,
             DEAD_EXCHANGE)

SCHEDULER_JOBS = "scheduler.jobs"
SCHEDULER_EVENTS = "scheduler.events"
LOGGER_ENTRIES = "logger.entries"

# Headers the consumer helpers read and write.
ATTEMPT_HEADER = "x-conveyor-attempt"
REASON_HEADER = "x-conveyor-reason"
SOURCE_QUEUE_HEADER = "x-conveyor-queue"
DEAD_AT_HEADER = "x-conveyor-dead-at"

# The broker's own safety net: a message redelivered this often (a consumer that crashes on
# it every time) is dead-lettered instead of looping forever.
DELIVERY_LIMIT = 20
# A delay queue outlives its longest message by this much, then the broker removes it.
DELAY_QUEUE_LINGER_MS = 60_000


def tasks_queue(region: str) -> str:
    return f"tasks.{region}"


def worker_queue(worker_id: str) -> str:
    """A worker's exclusive control queue: it exists exactly as long as the worker's
    connection, so the scheduler can tell a dead worker from the broker alone."""
    return f"worker.{worker_id}"


def dead_queue(queue: str) -> str:
    return f"dead.{queue}"


def delay_queue(queue: str, delay_ms: int) -> str:
    return f"delay.{queue}.{delay_ms}"


def quantize_delay_ms(seconds: float) -> int:
    """Round a delay so that retries share a few delay queues instead of one each."""
    ms = max(1, round(seconds * 1000))
    step = 100 if ms < 10_000 else 1000
    return max(step, round(ms / step) * step)


def delay_steps(max_seconds: float) -> list[int]:
    """Every value `quantize_delay_ms` gives for a delay up to `max_seconds`."""
    upper = quantize_delay_ms(max_seconds)
    return [ms for ms in range(100, 10_000, 100) if ms <= upper] + list(
        range(10_000, upper + 1, 1000))


@dataclass(frozen=True)
class Topology:
    prefix: str = ""
    regions: tuple[str, ...] = ("local",)

    def name(self, base: str) -> str:
        return f"{self.prefix}{base}"

    @property
    def consumed_queues(self) -> list[str]:
        """Every work queue, each with a dead-letter queue beside it."""
        return [SCHEDULER_JOBS, SCHEDULER_EVENTS, LOGGER_ENTRIES] + [
            tasks_queue(region) for region in self.regions
        ]

    def known_queues(self, max_delay_seconds: float) -> list[str]:
        """Every queue name this topology can make: work, dead-letter, and the delay queue of
        each work queue for every delay up to `max_delay_seconds`."""
        steps = delay_steps(max_delay_seconds)
        return [self.name(name) for queue in self.consumed_queues for name in (
            queue, dead_queue(queue), *(delay_queue(queue, ms) for ms in steps))]

    @property
    def exchange_names(self) -> list[str]:
        return [self.name(base) for base in EXCHANGES]

    def work_queue_arguments(self, queue: str) -> dict[str, Any]:
        return {
            "x-queue-type": "quorum",
            "x-dead-letter-exchange": self.name(DEAD_EXCHANGE),
            "x-dead-letter-routing-key": queue,
            "x-delivery-limit": DELIVERY_LIMIT,
        }

    def delay_queue_arguments(self, queue: str, delay_ms: int) -> dict[str, Any]:
        # Expired messages go back to the work queue through the default exchange.
        return {
            "x-message-ttl": delay_ms,
            "x-dead-letter-exchange": "",
            "x-dead-letter-routing-key": self.name(queue),
            "x-expires": delay_ms + DELAY_QUEUE_LINGER_MS,
        }

    async def declare(self, channel: AbstractChannel) -> None:
        n = self.name
        topic, direct, fanout = (
            aio_pika.ExchangeType.TOPIC,
            aio_pika.ExchangeType.DIRECT,
            aio_pika.ExchangeType.FANOUT,
        )
        exchanges = {}
        for base, kind in (
            (JOBS_EXCHANGE, topic),
            (TASKS_EXCHANGE, direct),
            (EVENTS_EXCHANGE, topic),
            (LOGS_EXCHANGE, topic),
            (CONTROL_EXCHANGE, fanout),
            (DEAD_EXCHANGE, topic),
        ):
            exchanges[base] = await channel.declare_exchange(n(base), kind, durable=True)

        bindings: dict[str, list[tuple[str, str]]] = {
            SCHEDULER_JOBS: [(JOBS_EXCHANGE, "job.*")],
            SCHEDULER_EVENTS: [(EVENTS_EXCHANGE, "task.*")],
            LOGGER_ENTRIES: [(LOGS_EXCHANGE, "log.#")],
        }
        for region in self.regions:
            bindings[tasks_queue(region)] = [(TASKS_EXCHANGE, region)]

        for queue, binds in bindings.items():
            work = await channel.declare_queue(
                n(queue), durable=True, arguments=self.work_queue_arguments(queue)
            )
            for exchange, key in binds:
                await work.bind(exchanges[exchange], routing_key=key)
            dead = await channel.declare_queue(
                n(dead_queue(queue)), durable=True, arguments={"x-queue-type": "quorum"}
            )
            await dead.bind(exchanges[DEAD_EXCHANGE], routing_key=queue)

    async def declare_delay_queue(
        self, channel: AbstractChannel, queue: str, delay_ms: int
    ) -> str:
        name = self.name(delay_queue(queue, delay_ms))
        await channel.declare_queue(
            name, durable=True, arguments=self.delay_queue_arguments(queue, delay_ms)
        )
        return name

    async def delete(self, channel: AbstractChannel) -> None:
        """Remove every queue and exchange of this prefix (tests clean up with this)."""
        for queue in self.consumed_queues:
            for name in (queue, dead_queue(queue)):
                await channel.queue_delete(self.name(name))
        for name in self.exchange_names:
            await channel.exchange_delete(name)
