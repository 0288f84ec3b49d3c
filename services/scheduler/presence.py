"""What the scheduler learns from the broker alone: whether a worker still lives (its
exclusive control queue exists exactly as long as its connection) and how many dispatches
still wait in a region's queue.

The questions are passive queue declarations on a plain channel of their own: a queue that
does not exist closes the channel that asked (a robust channel would re-ask on reopening),
so a fresh one is opened for the next question."""

from __future__ import annotations

import aiormq
from aio_pika.abc import AbstractRobustConnection

from shared.errors import DependencyError
from shared.topology import Topology, tasks_queue, worker_queue


class Presence:
    def __init__(self, connection: AbstractRobustConnection, topology: Topology) -> None:
        self.connection = connection
        self.topology = topology
        self._channel: aiormq.abc.AbstractChannel | None = None

    async def _ask(self, queue: str) -> aiormq.spec.Queue.DeclareOk | None:
        """The queue's declaration, or None when it does not exist."""
        channel = self._channel
        if channel is None or channel.is_closed:
            transport = self.connection.transport
            if transport is None or transport.connection.is_closed:
                raise DependencyError("connection to RabbitMQ is down")
            channel = self._channel = await transport.connection.channel()
        try:
            return await channel.queue_declare(self.topology.name(queue), passive=True)
        except aiormq.exceptions.ChannelNotFoundEntity:
            self._channel = None
            return None

    async def worker_alive(self, worker_id: str) -> bool:
        try:
            return await self._ask(worker_queue(worker_id)) is not None
        except aiormq.exceptions.ChannelLockedResource:
            # Some brokers refuse even a passive look at another connection's exclusive
            # queue: the refusal proves the queue, and so its worker, is there.
            self._channel = None
            return True

    async def waiting(self, region: str) -> int:
        """Dispatches ready in the region's queue (not those a worker holds)."""
        declared = await self._ask(tasks_queue(region))
        return 0 if declared is None else int(declared.message_count or 0)

    async def close(self) -> None:
        if self._channel is not None and not self._channel.is_closed:
            await self._channel.close()
        self._channel = None
