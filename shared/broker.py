"""RabbitMQ: the connection lifecycle and a publisher that only returns once the broker holds
the message (publisher confirms, `mandatory=True`: an unroutable message is an error)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from typing import Any

import aio_pika
import aiormq
from aio_pika.abc import (
    AbstractChannel,
    AbstractExchange,
    AbstractRobustConnection,
    DeliveryMode,
)
from pamqp.commands import Basic
from yarl import URL

from shared.errors import DependencyError, PublishError
from shared.messages import Envelope
from shared.retry import FOREVER, RetryPolicy, retrying
from shared.settings import Settings
from shared.topology import Topology

PUBLISH_TIMEOUT = 30.0
# What a lost or reconnecting broker connection raises: passing trouble, worth a retry.
CONNECTION_ERRORS: tuple[type[BaseException], ...] = (
    aiormq.exceptions.AMQPConnectionError,
    aiormq.exceptions.ChannelInvalidStateError,
    aiormq.exceptions.ConnectionClosed,
    ConnectionError,
    TimeoutError,
)
# Confirms kept in flight by `publish_many`: one round trip per message would cap a publisher
# near 1.2k msg/s on this kind of machine; a window of hundreds keeps the same guarantee.
CONFIRM_WINDOW = 256
RECONNECT_INTERVAL = 1.0
# `publish_patiently` tries again soon after a failure, then at most every 2 s, until its time
# is up: about how often the robust connection (RECONNECT_INTERVAL) tries to come back.
PATIENT_PUBLISH = RetryPolicy(max_attempts=FOREVER, base_delay=0.2, max_delay=2.0, jitter=0.0)


def redact_url(url: str) -> str:
    parsed = URL(url)
    return str(parsed.with_password("***")) if parsed.password else url


@asynccontextmanager
async def open_amqp(settings: Settings, name: str) -> AsyncIterator[AbstractRobustConnection]:
    try:
        connection = await aio_pika.connect_robust(
            settings.amqp_url, timeout=10, client_properties={"connection_name": name},
            # The broker closes a connection silent for two heartbeats, handing back what a
            # frozen process held; aio-pika's default (60 s) would make that slow.
            heartbeat=settings.amqp_heartbeat,
            # Back within a second of the broker: a worker's control queue is gone while it is
            # away, and the scheduler gives a worker's tasks up once that lasts a few seconds.
            reconnect_interval=RECONNECT_INTERVAL,
        )
    except (TimeoutError, OSError, aiormq.exceptions.AMQPError) as exc:
        reason = str(exc) or type(exc).__name__
        raise DependencyError(
            f"RabbitMQ at {redact_url(settings.amqp_url)} did not answer: {reason}"
        ) from exc
    try:
        yield connection
    finally:
        await connection.close()


async def amqp_ready(connection: AbstractRobustConnection) -> None:
    """Readiness check: raises unless the connection is up right now."""
    if connection.is_closed or not connection.connected.is_set():
        raise DependencyError("connection to RabbitMQ is down")


def build_message(
    body: bytes,
    *,
    message_id: str | None = None,
    message_type: str | None = None,
    headers: dict[str, Any] | None = None,
) -> aio_pika.Message:
    return aio_pika.Message(
        body=body,
        content_type="application/json",
        delivery_mode=DeliveryMode.PERSISTENT,
        message_id=message_id,
        type=message_type,
        headers=headers or {},
    )


class Publisher:
    """Publishes on one confirming channel; every call returns only after the broker's ack."""

    def __init__(self, channel: AbstractChannel, topology: Topology) -> None:
        self.channel = channel
        self.topology = topology
        self._exchanges: dict[str, AbstractExchange] = {}

    @classmethod
    async def open(cls, connection: AbstractRobustConnection, topology: Topology) -> Publisher:
        channel = await connection.channel(publisher_confirms=True)
        return cls(channel, topology)

    async def close(self) -> None:
        await self.channel.close()

    async def _exchange(self, base: str) -> AbstractExchange:
        """Exchanges by their unprefixed name; "" is the default exchange."""
        if base == "":
            return self.channel.default_exchange
        exchange = self._exchanges.get(base)
        if exchange is None:
            exchange = await self.channel.get_exchange(self.topology.name(base), ensure=False)
            self._exchanges[base] = exchange
        return exchange

    async def publish(
        self,
        exchange: str,
        routing_key: str,
        message: Envelope,
        headers: dict[str, Any] | None = None,
    ) -> None:
        await self.publish_raw(
            exchange,
            routing_key,
            build_message(
                message.encode(),
                message_id=str(message.message_id),
                message_type=getattr(message, "type", None),
                headers=headers,
            ),
        )

    async def publish_raw(
        self, exchange: str, routing_key: str, message: aio_pika.Message
    ) -> None:
        target = await self._exchange(exchange)
        try:
            result = await target.publish(
                message, routing_key, mandatory=True, timeout=PUBLISH_TIMEOUT
            )
        except aio_pika.exceptions.DeliveryError as exc:
            raise PublishError(
                f"broker refused message to {target.name or '(default)'}/{routing_key}"
            ) from exc
        if not isinstance(result, Basic.Ack):
            raise PublishError(
                f"unroutable: no queue is bound to exchange {target.name or '(default)'!r} "
                f"with routing key {routing_key!r}"
            )

    async def publish_patiently(
        self, exchange: str, routing_key: str, message: Envelope, within: float
    ) -> None:
        """Publish, riding out a broker outage of up to `within` seconds (the robust
        connection reconnects by itself); then give up with the last error."""
        await retrying(
            lambda _: asyncio.wait_for(self.publish(exchange, routing_key, message), 10),
            PATIENT_PUBLISH, CONNECTION_ERRORS, within=within)

    async def publish_many(
        self, items: Iterable[tuple[str, str, Envelope]], window: int = CONFIRM_WINDOW
    ) -> None:
        """Publish several messages with up to `window` confirms in flight; raises the first
        failure after every publish has settled."""
        gate = asyncio.Semaphore(window)

        async def one(exchange: str, key: str, message: Envelope) -> None:
            async with gate:
                await self.publish(exchange, key, message)

        results = await asyncio.gather(
            *(one(*item) for item in items), return_exceptions=True
        )
        for result in results:
            if isinstance(result, BaseException):
                raise result
