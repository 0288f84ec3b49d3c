"""A queue subscription that takes no more deliveries than its owner can run.

RabbitMQ's prefetch alone cannot bound a consumer whose handlers ack early (a worker acks a
task once its start is reported, so a prefetch slot frees while the task still runs). Here
the consumer subscribes with a prefetch of exactly the free slots, and cancels the
subscription when they are taken. Two details make that exact:

- the consumer tag is chosen here, before `basic.consume` is sent, so a cancel can follow at
  once (a tag learnt from the reply came too late: deliveries arrive before the reply is
  handled, and a pause in between did nothing);
- one task at a time brings the subscription in line with what is wanted, so a consume and a
  cancel never race each other.

A delivery that arrives while every slot is taken (sent before the broker saw the cancel) is
never handed back with a nack, which would count against the queue's delivery limit and, on
an idle queue, come straight back to the same consumer: the owner keeps it until a slot frees.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable

import structlog
from aio_pika.abc import AbstractChannel, AbstractIncomingMessage, AbstractQueue

from shared.broker import CONNECTION_ERRORS

log = structlog.get_logger(__name__)
OnMessage = Callable[[AbstractIncomingMessage], Awaitable[None]]


class Subscription:
    def __init__(self, channel: AbstractChannel, queue: AbstractQueue, on_message: OnMessage,
                 free: Callable[[], int]) -> None:
        self.channel = channel
        self.queue = queue
        self.on_message = on_message
        self.free = free  # slots free now; 0 means: do not subscribe
        self.tag: str | None = None
        self._lock = asyncio.Lock()
        self._adjusting: asyncio.Task[None] | None = None
        self._closed = False

    def adjust(self) -> None:
        """Subscribe or cancel, in the background, to match `free()`."""
        if self._adjusting is None or self._adjusting.done():
            self._adjusting = asyncio.create_task(self._adjust())

    async def _adjust(self) -> None:
        async with self._lock:
            try:
                await self._converge()
            except CONNECTION_ERRORS as exc:
                # The robust channel restores a live subscription by itself; a later adjust
                # (a handler ending) tries again otherwise.
                log.warning("could not adjust the subscription", reason=str(exc))

    async def _converge(self) -> None:
        while True:
            slots = 0 if self._closed else self.free()
            if slots > 0 and self.tag is None:
                await self.channel.set_qos(prefetch_count=slots)
                tag = self.tag = f"conveyor-{uuid.uuid4().hex}"
                try:
                    await self.queue.consume(self.on_message, consumer_tag=tag)
                except BaseException:
                    self.tag = None
                    raise
            elif slots <= 0 and self.tag is not None:
                tag, self.tag = self.tag, None
                await self.queue.cancel(tag)
            else:
                return

    async def close(self) -> None:
        """Cancel for good; waits for an adjustment under way."""
        self._closed = True
        if self._adjusting is not None:
            await asyncio.gather(self._adjusting, return_exceptions=True)
        async with self._lock:
            await self._converge()
