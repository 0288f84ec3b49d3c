"""Consume a queue with explicit outcomes, never a blind ack and never a requeue forever:

- the handler returns           -> ack
- the store is down (with an
  `Outage` to wait on)          -> hold the delivery, wait until the store answers, then
                                   handle it again (as a redelivery): no attempt is spent
- the broker connection failed  -> no copy is made: the delivery went back to the queue as
                                   its channel closed, so it can never exist twice (a broker
                                   error on a channel that lives is a transient error)
- `TransientError` / `Retry`    -> republish after a capped exponential backoff with jitter
                                   (through a TTL queue that dead-letters back), then ack;
                                   after the last attempt -> dead-letter
- undecodable or invalid body,
  `PermanentError`, or anything
  unexpected (logged with its
  traceback)                    -> dead-letter with the reason in a header, then ack
- shutdown while handling       -> nack with requeue: handed back at once
"""

from __future__ import annotations

import asyncio
import collections
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Protocol

import structlog
from aio_pika.abc import AbstractChannel, AbstractIncomingMessage, AbstractQueue

from shared.broker import CONNECTION_ERRORS, Publisher, build_message
from shared.delivery import Delivery
from shared.errors import MessageError, PermanentError, Retry, TransientError
from shared.messages import decode
from shared.outage import HOLD_ROUNDS, Outage
from shared.retry import RetryPolicy
from shared.topology import (
    ATTEMPT_HEADER,
    DEAD_AT_HEADER,
    DEAD_EXCHANGE,
    REASON_HEADER,
    SOURCE_QUEUE_HEADER,
    quantize_delay_ms,
)

log = structlog.get_logger(__name__)
# Failures that may pass: retried with backoff rather than dead-lettered (with those that
# mean the consumer's `outage` is down, once it gave up waiting for it).
TRANSIENT: tuple[type[BaseException], ...] = (TransientError, *CONNECTION_ERRORS)


Handler = Callable[[Delivery], Awaitable[None]]


def _reason_text(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"[:1000]


class Consumer:
    """Runs `handler` for each message of one queue, each in a task this consumer owns; the
    channel's prefetch bounds how many run at once. With a `limit`, a delivery beyond it
    waits here, unacked, until a handler ends (after a channel reset the broker grants a full
    prefetch again while earlier handlers still run); it is never handed back, which would
    count against the queue's delivery limit. With an `outage`, a handler that finds the
    store down waits for it instead of failing."""

    def __init__(
        self,
        channel: AbstractChannel,
        publisher: Publisher,
        queue: str,
        handler: Handler,
        policy: RetryPolicy,
        outage: Outage | None = None,
        limit: int | None = None,
    ) -> None:
        self.channel = channel
        self.publisher = publisher
        self.queue = queue  # unprefixed
        self.handler = handler
        self.policy = policy
        self.outage = outage
        self._down: tuple[type[BaseException], ...] = outage.down if outage is not None else ()
        self._transient = (*TRANSIENT, *self._down)
        self._queue: AbstractQueue | None = None
        self._tag: str | None = None
        self.limit = limit
        self._tasks: set[asyncio.Task[None]] = set()
        self._waiting: collections.deque[AbstractIncomingMessage] = collections.deque()
        self._stopping = False

    @property
    def in_flight(self) -> int:
        return len(self._tasks) + len(self._waiting)

    async def start(self) -> None:
        name = self.publisher.topology.name(self.queue)
        self._queue = await self.channel.get_queue(name, ensure=True)
        self._tag = await self._queue.consume(self._on_message)

    async def _on_message(self, incoming: AbstractIncomingMessage) -> None:
        if self._stopping:
            await incoming.nack(requeue=True)  # arrived as consuming stopped: hand it back
            return
        if self.limit is not None and len(self._tasks) >= self.limit:
            self._waiting.append(incoming)
            return
        self._run(incoming)

    def _run(self, incoming: AbstractIncomingMessage) -> None:
        task = asyncio.create_task(self._handle(incoming))
        self._tasks.add(task)
        task.add_done_callback(self._ended)

    def _ended(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        while self._waiting and not self._stopping and (
                self.limit is None or len(self._tasks) < self.limit):
            incoming = self._waiting.popleft()
            if not incoming.channel.is_closed:  # else the broker gave it to another
                self._run(incoming)

    async def stop(self, grace: float) -> None:
        """Stop taking deliveries, let running handlers finish within `grace` seconds, then
        cancel the rest so that their messages go back to the queue at once."""
        self._stopping = True
        if self._queue is not None and self._tag is not None:
            tag, self._tag = self._tag, None
            await self._queue.cancel(tag)
        while self._waiting:
            incoming = self._waiting.popleft()
            if not incoming.channel.is_closed:
                await incoming.nack(requeue=True)
        if self._tasks:
            _, pending = await asyncio.wait(set(self._tasks), timeout=grace)
            for task in pending:
                task.cancel()
            if pending:
                log.warning("handed back after grace period", queue=self.queue,
                            count=len(pending))
                await asyncio.gather(*pending, return_exceptions=True)

    async def _handle(self, incoming: AbstractIncomingMessage) -> None:
        try:
            await self._process(incoming)
        except asyncio.CancelledError:
            raise
        except Exception:
            if incoming.channel.is_closed:
                # The broker took the delivery back when its channel closed (a broker
                # restart, or a consumer timeout); its redelivery is a known duplicate.
                log.info("delivery already handed back by the broker; not settled here")
                return
            # Settling failed (the broker went away mid-retry or mid-dead-letter): leave the
            # message unacked; the broker redelivers it when the channel closes.
            log.exception("could not settle message; it will be redelivered")

    async def _process(self, incoming: AbstractIncomingMessage) -> None:
        headers = incoming.headers or {}
        raw_attempt = headers.get(ATTEMPT_HEADER, 1)
        attempt = raw_attempt if isinstance(raw_attempt, int) and raw_attempt >= 1 else 1
        structlog.contextvars.clear_contextvars()
        structlog.contextvars.bind_contextvars(queue=self.queue, attempt=attempt)
        try:
            message = decode(incoming.body)
        except MessageError as exc:
            await self._dead_letter(incoming, str(exc))
            return
        structlog.contextvars.bind_contextvars(
            message_type=message.type, job_id=getattr(message, "job_id", None)
        )
        delivery = Delivery(message, attempt, bool(incoming.redelivered), incoming)
        try:
            await self._call(delivery)
        except asyncio.CancelledError:
            if not delivery.acked and not incoming.channel.is_closed:
                await incoming.nack(requeue=True)
            raise
        except Exception as exc:
            if delivery.acked:
                log.exception("handler failed after settling its message")
            elif isinstance(exc, CONNECTION_ERRORS) and incoming.channel.is_closed:
                # No copy (a retry published while its ack fails would run it twice): the
                # broker already took the delivery back with its channel.
                log.warning("broker connection lost; the message goes back to its queue",
                            reason=str(exc) or type(exc).__name__)
            elif isinstance(exc, self._transient):
                await self._retry_or_dead_letter(incoming, attempt, exc)
            elif isinstance(exc, PermanentError):
                await self._dead_letter(incoming, _reason_text(exc))
            else:
                log.exception("handler failed unexpectedly")
                await self._dead_letter(incoming, f"unexpected {_reason_text(exc)}")
        else:
            if not delivery.acked:
                await incoming.ack()

    async def _call(self, delivery: Delivery) -> None:
        """The handler, run again (as a redelivery: it may have stopped half-way) each time
        the store turns out to be down, once the store answers."""
        rounds = 0
        while True:
            try:
                await self.handler(delivery)
                return
            except self._down as exc:
                if self.outage is None or delivery.acked or self._stopping:
                    raise
                if not await self.outage.wait_until_up(exc):
                    rounds += 1
                    if rounds >= HOLD_ROUNDS:
                        raise
                delivery.redelivered = True

    async def _retry_or_dead_letter(
        self, incoming: AbstractIncomingMessage, attempt: int, exc: BaseException
    ) -> None:
        if attempt >= self.policy.max_attempts:
            await self._dead_letter(
                incoming, f"gave up after {attempt} attempts: {_reason_text(exc)}"
            )
            return
        seconds = exc.delay if isinstance(exc, Retry) and exc.delay is not None else (
            self.policy.delay(attempt)
        )
        delay_ms = quantize_delay_ms(seconds)
        topology = self.publisher.topology
        delay_name = await topology.declare_delay_queue(self.channel, self.queue, delay_ms)
        headers = dict(incoming.headers or {})
        headers[ATTEMPT_HEADER] = attempt + 1
        headers[REASON_HEADER] = _reason_text(exc)
        await self.publisher.publish_raw(
            "", delay_name, build_message(
                incoming.body, message_id=incoming.message_id, message_type=incoming.type,
                headers=headers,
            ),
        )
        log.info("retry scheduled", delay_ms=delay_ms, reason=str(exc))
        await incoming.ack()

    async def _dead_letter(self, incoming: AbstractIncomingMessage, reason: str) -> None:
        await dead_letter(self.publisher, self.queue, incoming, reason)


async def dead_letter(
    publisher: Publisher, queue: str, incoming: AbstractIncomingMessage, reason: str,
    ack: bool = True,
) -> None:
    """Put `incoming` on `dead.<queue>` with the reason, source queue and time in its
    headers; then ack it (unless the caller settles it some other way)."""
    headers = dict(incoming.headers or {})
    headers[REASON_HEADER] = reason
    headers[SOURCE_QUEUE_HEADER] = queue
    headers[DEAD_AT_HEADER] = datetime.now(UTC).isoformat()
    await publisher.publish_raw(
        DEAD_EXCHANGE, queue, build_message(
            incoming.body, message_id=incoming.message_id, message_type=incoming.type,
            headers=headers,
        ),
    )
    log.warning("dead-lettered", reason=reason)
    if ack:
        await incoming.ack()


class Consuming(Protocol):
    """What a service does with any of its consumers, one at a time or in batches."""

    queue: str

    @property
    def in_flight(self) -> int: ...

    async def start(self) -> None: ...

    async def stop(self, grace: float) -> None: ...


__all__ = ["Consumer", "Consuming", "Delivery", "Handler", "RetryPolicy", "dead_letter"]
