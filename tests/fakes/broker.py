"""A `Publisher` that records instead of sending, the channel and queue the consumer talks
to, and an incoming delivery that records how it was settled."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, cast

import aio_pika
import aiormq
from aio_pika.abc import AbstractChannel

from shared.broker import Publisher
from shared.errors import PublishError
from shared.messages import Message, decode
from shared.topology import Topology

# What aio-pika raises on a publish or an ack once the broker connection is gone.
CONNECTION_LOST = aiormq.exceptions.ChannelInvalidStateError


def unroutable(exchange: str = "", key: str = "") -> PublishError:
    """What `Publisher.publish_raw` raises when no queue is bound for the message."""
    return PublishError(f"unroutable: no queue is bound to exchange {exchange!r} "
                        f"with routing key {key!r}")


@dataclass
class Sent:
    exchange: str
    routing_key: str
    message: aio_pika.Message

    @property
    def envelope(self) -> Message:
        return decode(self.message.body)

    @property
    def headers(self) -> dict[str, Any]:
        return dict(self.message.headers or {})


class FakeQueue:
    """A queue the consumer subscribes to; `deliver` hands it a message as the broker would."""

    def __init__(self, name: str, arguments: dict[str, Any] | None = None) -> None:
        self.name = name
        self.arguments = arguments or {}
        self.callback: Callable[[Any], Awaitable[None]] | None = None

    async def consume(self, callback: Callable[[Any], Awaitable[None]]) -> str:
        self.callback = callback
        return f"ctag.{self.name}"

    async def cancel(self, tag: str) -> None:
        self.callback = None

    async def deliver(self, incoming: FakeIncoming) -> None:
        assert self.callback is not None, f"nothing consumes {self.name}"
        await self.callback(incoming)


class FakeChannel:
    def __init__(self) -> None:
        self.is_closed = False
        self.queues: dict[str, FakeQueue] = {}

    async def declare_queue(self, name: str, durable: bool = False,
                            arguments: dict[str, Any] | None = None) -> FakeQueue:
        self.queues[name] = FakeQueue(name, arguments)
        return self.queues[name]

    async def get_queue(self, name: str, ensure: bool = True) -> FakeQueue:
        return self.queues.setdefault(name, FakeQueue(name))

    @property
    def typed(self) -> AbstractChannel:
        """This fake where aio-pika's channel is expected."""
        return cast(AbstractChannel, self)


class FakePublisher(Publisher):
    """Records every message in `sent` (after the broker would have confirmed it). `fail`
    makes the next publishes raise a broker error instead. `on_sent`, if set, is awaited with
    each message before the publish returns: a test's stand-in for the service that consumes
    it (the gateway's stop waits for the scheduler's write)."""

    def __init__(self, topology: Topology | None = None) -> None:
        self.fake_channel = FakeChannel()
        super().__init__(self.fake_channel.typed, topology or Topology(prefix="unit."))
        self.sent: list[Sent] = []
        self._failure: BaseException | None = None
        self._failures_left: int | None = None
        self.on_sent: Callable[[Sent], Awaitable[None]] | None = None

    def fail(self, error: BaseException, times: int | None = None) -> None:
        """Raise `error` on the next `times` publishes (None: until `recover`)."""
        self._failure, self._failures_left = error, times

    def recover(self) -> None:
        self._failure = self._failures_left = None

    async def publish_raw(self, exchange: str, routing_key: str,
                          message: aio_pika.Message) -> None:
        if self._failure is not None:
            error = self._failure
            if self._failures_left is not None:
                self._failures_left -= 1
                if self._failures_left <= 0:
                    self.recover()
            raise error
        sent = Sent(exchange, routing_key, message)
        self.sent.append(sent)
        if self.on_sent is not None:
            await self.on_sent(sent)

    def envelopes(self, exchange: str | None = None) -> list[Message]:
        return [s.envelope for s in self.sent if exchange is None or s.exchange == exchange]


@dataclass
class FakeIncoming:
    """A delivery as the consumer reads it; `settled` is set by its ack or nack."""

    body: bytes
    channel: FakeChannel
    headers: dict[str, Any] = field(default_factory=dict)
    message_id: str | None = None
    type: str | None = None
    redelivered: bool = False
    outcome: str | None = None  # "ack" or "requeue"
    settled: asyncio.Event = field(default_factory=asyncio.Event)

    @classmethod
    def of(cls, message: Message, channel: FakeChannel, **headers: Any) -> FakeIncoming:
        return cls(message.encode(), channel, dict(headers), str(message.message_id),
                   message.type)

    async def ack(self) -> None:
        self._settle("ack")

    async def nack(self, requeue: bool = True) -> None:
        self._settle("requeue" if requeue else "drop")

    def _settle(self, outcome: str) -> None:
        if self.channel.is_closed:
            raise CONNECTION_LOST("channel closed")
        assert self.outcome is None, f"settled twice: {self.outcome}, then {outcome}"
        self.outcome = outcome
        self.settled.set()
