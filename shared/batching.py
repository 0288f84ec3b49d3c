"""Consume a queue in batches: messages gather until `max_batch` of them or `max_wait`
seconds, the handler makes the whole batch durable at once, and one multiple-ack settles it.

Acks stay in delivery order because batches are handled one at a time on a channel of their
own; an invalid message in a batch is dead-lettered and covered by the same multiple-ack.
If the store is down, the batch is held and stored once the store answers again (see
`shared.outage`: no redelivery is spent on it); if the handler fails otherwise, the batch is
handed back (nack with requeue) after a pause, so nothing is lost."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import structlog
from aio_pika.abc import AbstractChannel, AbstractIncomingMessage, AbstractQueue

from shared.broker import Publisher
from shared.consumer import dead_letter
from shared.errors import MessageError
from shared.messages import Message, decode
from shared.outage import HOLD_ROUNDS, Outage

log = structlog.get_logger(__name__)
BatchHandler = Callable[[list[Message]], Awaitable[None]]
FAILURE_PAUSE = 1.0


class BatchConsumer:
    def __init__(
        self,
        channel: AbstractChannel,
        publisher: Publisher,
        queue: str,
        handler: BatchHandler,
        max_batch: int,
        max_wait: float,
        accepts: tuple[type, ...],
        outage: Outage | None = None,
    ) -> None:
        self.outage = outage
        self.channel = channel
        self.publisher = publisher
        self.queue = queue
        self.handler = handler
        self.max_batch = max_batch
        self.max_wait = max_wait
        self.accepts = accepts
        self._buffer: list[AbstractIncomingMessage] = []
        self._lock = asyncio.Lock()
        self._timer: asyncio.Task[None] | None = None
        self._flushes: set[asyncio.Task[None]] = set()
        self._queue: AbstractQueue | None = None
        self._tag: str | None = None

    @property
    def in_flight(self) -> int:
        return len(self._buffer)

    async def start(self) -> None:
        self._queue = await self.channel.get_queue(
            self.publisher.topology.name(self.queue), ensure=True
        )
        self._tag = await self._queue.consume(self._on_message)

    async def _on_message(self, incoming: AbstractIncomingMessage) -> None:
        self._buffer.append(incoming)
        if len(self._buffer) >= self.max_batch:
            self._spawn_flush()
        elif self._timer is None:
            self._timer = asyncio.create_task(self._flush_later())

    async def _flush_later(self) -> None:
        await asyncio.sleep(self.max_wait)
        self._timer = None
        self._spawn_flush()

    def _spawn_flush(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        task = asyncio.create_task(self.flush())
        self._flushes.add(task)
        task.add_done_callback(self._flushes.discard)

    async def flush(self) -> None:
        async with self._lock:
            batch, self._buffer = self._buffer[: self.max_batch], self._buffer[self.max_batch:]
            if not batch:
                return
            messages: list[Message] = []
            for incoming in batch:
                try:
                    message = decode(incoming.body)
                except MessageError as exc:
                    await dead_letter(self.publisher, self.queue, incoming, str(exc), ack=False)
                    continue
                if not isinstance(message, self.accepts):
                    await dead_letter(self.publisher, self.queue, incoming,
                                      f"{message.type} does not belong on {self.queue}",
                                      ack=False)
                    continue
                messages.append(message)
            try:
                if messages:
                    await self._store(messages)
            except Exception:
                log.exception("batch failed; handing it back", queue=self.queue,
                              size=len(batch))
                await asyncio.sleep(FAILURE_PAUSE)
                await batch[-1].nack(multiple=True, requeue=True)
                return
            await batch[-1].ack(multiple=True)
        if len(self._buffer) >= self.max_batch:
            self._spawn_flush()

    async def _store(self, messages: list[Message]) -> None:
        rounds = 0
        while True:
            try:
                await self.handler(messages)
                return
            except Exception as exc:
                if self.outage is None or not isinstance(exc, self.outage.down):
                    raise
                if not await self.outage.wait_until_up(exc):
                    rounds += 1  # the store answers: the batch itself fails
                    if rounds >= HOLD_ROUNDS:
                        raise

    async def stop(self, grace: float) -> None:
        """Stop taking deliveries and make what was received durable within `grace`."""
        if self._queue is not None and self._tag is not None:
            await self._queue.cancel(self._tag)
            self._tag = None
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        try:
            async with asyncio.timeout(grace):
                while self._buffer or self._flushes:
                    await asyncio.gather(*self._flushes, return_exceptions=True)
                    await self.flush()
        except TimeoutError:
            log.warning("unflushed entries handed back", count=len(self._buffer))
