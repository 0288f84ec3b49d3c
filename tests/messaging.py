"""Reading what reached a queue, for tests."""

from __future__ import annotations

import asyncio

from aio_pika.abc import AbstractIncomingMessage

from shared.runtime import Broker


async def wait_for_message(
    broker: Broker, queue: str, within: float = 10.0
) -> AbstractIncomingMessage:
    """Poll a queue with basic.get until a message arrives or the deadline passes."""
    channel = broker.publisher.channel
    target = await channel.get_queue(broker.topology.name(queue), ensure=False)
    deadline = asyncio.get_running_loop().time() + within
    while asyncio.get_running_loop().time() < deadline:
        message = await target.get(fail=False, no_ack=True)
        if message is not None:
            return message
        await asyncio.sleep(0.05)
    raise AssertionError(f"no message on {queue} within {within}s")


async def assert_empty(broker: Broker, queue: str) -> None:
    """Nothing is ready on the queue (quorum queues' declare-ok counts can lag, so ask with
    basic.get)."""
    target = await broker.publisher.channel.get_queue(broker.topology.name(queue), ensure=False)
    assert await target.get(fail=False, no_ack=True) is None
