"""Each worker listens on a queue of its own, bound to the `conveyor.control` fanout, for
requests to stop a running task. The queue is exclusive and named after the worker, so it
lives exactly as long as the worker's connection: a stop only matters to workers running
now, and the scheduler learns from the queue's absence that a worker died (within seconds,
rather than after the heartbeat silence rule). A reconnecting worker declares it again."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import structlog
from aio_pika.abc import AbstractChannel, AbstractIncomingMessage, AbstractQueue

from shared.consumer import Delivery
from shared.errors import MessageError
from shared.messages import decode
from shared.topology import CONTROL_EXCHANGE, Topology, worker_queue

log = structlog.get_logger(__name__)


class ControlListener:
    queue = "control"
    in_flight = 0

    def __init__(self, channel: AbstractChannel, topology: Topology, worker_id: str,
                 handler: Callable[[Delivery], Awaitable[None]]) -> None:
        self.channel = channel
        self.worker_id = worker_id
        self.topology = topology
        self.handler = handler
        self._queue: AbstractQueue | None = None
        self._tag: str | None = None

    async def start(self) -> None:
        self._queue = await self.channel.declare_queue(
            self.topology.name(worker_queue(self.worker_id)), exclusive=True, auto_delete=True)
        exchange = await self.channel.get_exchange(self.topology.name(CONTROL_EXCHANGE))
        await self._queue.bind(exchange)
        self._tag = await self._queue.consume(self._on_message, no_ack=True)

    async def _on_message(self, incoming: AbstractIncomingMessage) -> None:
        try:
            message = decode(incoming.body)
        except MessageError as exc:
            log.warning("ignored control message", reason=str(exc))
            return
        await self.handler(Delivery(message, 1, False))

    async def stop(self, grace: float) -> None:
        del grace  # nothing in flight: control messages are handled at once
        if self._queue is not None and self._tag is not None:
            await self._queue.cancel(self._tag)
            self._tag = None
