"""`publish_confirmed`: messages/s through `Publisher.publish_many` (confirms, mandatory,
persistent, onto a quorum queue), against bare aio-pika awaiting each confirm (the usual way)
and bare aio-pika with the same window of confirms (the ceiling)."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from bench.common import row
from shared.broker import CONFIRM_WINDOW, Publisher, build_message, open_amqp
from shared.messages import JobSubmitted
from shared.runtime import topology_for
from shared.settings import Settings
from shared.topology import JOBS_EXCHANGE


def message(index: int) -> JobSubmitted:
    return JobSubmitted.model_validate(
        {"job_id": f"bench{index:07d}", "spec": {"tasks": [{"tool": "debug:sleep"}]}}
    )


async def run(settings: Settings, count: int) -> list[dict[str, Any]]:
    topology = topology_for(settings)
    async with open_amqp(settings, "bench") as connection:
        publisher = await Publisher.open(connection, topology)
        await topology.declare(publisher.channel)
        exchange = await publisher.channel.get_exchange(topology.name(JOBS_EXCHANGE))
        bodies = [message(i) for i in range(count)]

        started = time.perf_counter()
        await publisher.publish_many((JOBS_EXCHANGE, "job.submitted", m) for m in bodies)
        ours = count / (time.perf_counter() - started)

        started = time.perf_counter()
        for m in bodies:
            await exchange.publish(build_message(m.encode()), "job.submitted")
        serial = count / (time.perf_counter() - started)

        gate = asyncio.Semaphore(CONFIRM_WINDOW)

        async def one(m: JobSubmitted) -> None:
            async with gate:
                await exchange.publish(build_message(m.encode()), "job.submitted")

        started = time.perf_counter()
        await asyncio.gather(*(one(m) for m in bodies))
        windowed = count / (time.perf_counter() - started)
        await topology.delete(publisher.channel)
        await publisher.close()
    notes = f"{count} persistent messages, confirms, mandatory, one quorum queue"
    return [
        row("publish_confirmed", ours, "msg/s", "aio_pika_serial", serial,
            notes + "; peer awaits each confirm"),
        row("publish_confirmed", ours, "msg/s", "aio_pika_windowed", windowed,
            notes + f"; peer keeps the same {CONFIRM_WINDOW}-confirm window"),
    ]
