"""What every service process does the same way: run until SIGTERM or SIGINT, connect to the
broker with the topology declared, and build its consumers with one retry policy.

The store is handed in by the services that use it (`serve_consumers(store=open_store)`),
never imported here: the worker runs on this module and must not load PyMongo."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import AsyncIterator, Callable, Coroutine, Sequence
from contextlib import AbstractAsyncContextManager, AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import structlog
from aio_pika.abc import AbstractRobustChannel, AbstractRobustConnection
from aiohttp import web

from shared.batching import BatchConsumer, BatchHandler
from shared.broker import Publisher, amqp_ready, open_amqp
from shared.consumer import Consumer, Consuming, Handler
from shared.errors import ConveyorError
from shared.health import Check, add_health_routes, serve_app
from shared.objects import ObjectStore, open_objects
from shared.outage import Outage
from shared.periodic import Periodic
from shared.retry import RetryPolicy
from shared.settings import Settings
from shared.topology import Topology

if TYPE_CHECKING:  # for annotations only: see the module's docstring
    from shared.store import Store

log = structlog.get_logger(__name__)
# How a service that uses the store opens it: `shared.store.open_store`.
StoreOpener = Callable[[Settings, str], AbstractAsyncContextManager["Store"]]


def topology_for(settings: Settings) -> Topology:
    return Topology(prefix=settings.amqp_prefix, regions=tuple(settings.regions))


def retry_policy_for(settings: Settings) -> RetryPolicy:
    return RetryPolicy(
        max_attempts=settings.max_attempts,
        base_delay=settings.retry_base_delay,
        max_delay=settings.retry_max_delay,
    )


def stop_event() -> asyncio.Event:
    """An event set by the first SIGTERM or SIGINT."""
    event = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, event.set)
    return event


@dataclass
class Broker:
    """A service's broker side: one connection, a confirming publisher and a consuming
    channel with an explicit prefetch."""

    connection: AbstractRobustConnection
    publisher: Publisher
    channel: AbstractRobustChannel
    topology: Topology
    policy: RetryPolicy

    def consumer(self, queue: str, handler: Handler, outage: Outage | None = None,
                 limit: int | None = None) -> Consumer:
        return Consumer(self.channel, self.publisher, queue, handler, self.policy, outage,
                        limit)

    def batch_consumer(
        self, queue: str, handler: BatchHandler, *, max_batch: int, max_wait: float,
        accepts: tuple[type, ...], outage: Outage | None = None,
    ) -> BatchConsumer:
        return BatchConsumer(self.channel, self.publisher, queue, handler, max_batch, max_wait,
                             accepts, outage)


@asynccontextmanager
async def open_broker(settings: Settings, name: str, prefetch: int) -> AsyncIterator[Broker]:
    async with AsyncExitStack() as stack:
        connection = await stack.enter_async_context(open_amqp(settings, name))
        topology = topology_for(settings)
        publisher = await Publisher.open(connection, topology)
        stack.push_async_callback(publisher.close)
        await topology.declare(publisher.channel)
        channel = await connection.channel(publisher_confirms=False)
        stack.push_async_callback(channel.close)
        await channel.set_qos(prefetch_count=prefetch)
        yield Broker(connection, publisher, channel, topology, retry_policy_for(settings))


async def drain(consumers: Sequence[Consuming], grace: float) -> None:
    """Stop every consumer at once, each finishing in-flight work within `grace`."""
    await asyncio.gather(*(consumer.stop(grace) for consumer in consumers))


def run_service(name: str, body: Callable[[], Coroutine[Any, Any, None]]) -> int:
    """Run a service's async body; a startup failure is one clear line and exit code 1."""
    try:
        asyncio.run(body())
    except ConveyorError as exc:
        log.error("cannot start", service=name, error=str(exc))
        return 1
    return 0


@dataclass
class Resources:
    """What a consuming service opened; `store` and `objects` only when it asked for them."""

    broker: Broker
    store: Store | None
    objects: ObjectStore | None
    closers: list[Callable[[], Coroutine[Any, Any, None]]] = field(default_factory=list)
    periodic: list[Periodic] = field(default_factory=list)
    _outage: Outage | None = None

    def repeat(self, periodic: Periodic) -> None:
        """Run `periodic` beside the consumers: started after them, stopped as they drain."""
        self.periodic.append(periodic)

    def on_close(self, closer: Callable[[], Coroutine[Any, Any, None]]) -> None:
        """Run `closer` after the consumers drained, before the connections close."""
        self.closers.append(closer)

    def need_store(self) -> Store:
        if self.store is None:
            raise ConveyorError("this service was started without MongoDB")
        return self.store

    def store_outage(self) -> Outage:
        """What this service's consumers wait on while MongoDB does not answer."""
        if self._outage is None:
            self._outage = self.need_store().outage()
        return self._outage

    def need_objects(self) -> ObjectStore:
        if self.objects is None:
            raise ConveyorError("this service was started without S3")
        return self.objects

    def checks(self) -> dict[str, Check]:
        checks: dict[str, Check] = {"rabbitmq": lambda: amqp_ready(self.broker.connection)}
        if self.store is not None:
            checks["mongodb"] = self.store.ping
        if self.objects is not None:
            checks["s3"] = self.objects.ping
        return checks


async def serve_consumers(
    settings: Settings,
    service: str,
    *,
    port: int,
    prefetch: int,
    wire: Callable[[Resources], Sequence[Consuming]],
    http: Callable[[Resources], web.Application] | None = None,
    store: StoreOpener | None = None,
    use_objects: bool = False,
    stop: asyncio.Event | None = None,
    ready: asyncio.Event | None = None,
) -> None:
    """The life of a consuming service: open what it uses, serve its health endpoints,
    consume (and run what `wire` asked to repeat) until SIGTERM or SIGINT (or `stop` is
    set), then drain within the grace period, stopping the repeated work meanwhile, and
    close. `ready` is set once it consumes; `store` opens MongoDB for a service that uses
    it."""
    stop = stop or stop_event()
    async with AsyncExitStack() as stack:
        opened = (
            await stack.enter_async_context(store(settings, f"conveyor-{service}"))
            if store is not None else None
        )
        objects = (
            await stack.enter_async_context(open_objects(settings)) if use_objects else None
        )
        broker = await stack.enter_async_context(
            open_broker(settings, f"conveyor-{service}", prefetch)
        )
        resources = Resources(broker, opened, objects)
        consumers = wire(resources)
        app = http(resources) if http is not None else web.Application()
        add_health_routes(app, service, resources.checks())
        bound = await stack.enter_async_context(serve_app(app, settings.bind_host, port))
        for consumer in consumers:
            await consumer.start()
        for periodic in resources.periodic:
            periodic.start()
        log.info("ready", service=service, port=bound,
                 queues=[consumer.queue for consumer in consumers])
        if ready is not None:
            ready.set()
        await stop.wait()
        log.info("stopping", service=service, in_flight=sum(c.in_flight for c in consumers))
        await asyncio.gather(drain(consumers, settings.grace_period),
                             *(periodic.stop() for periodic in resources.periodic))
        for closer in resources.closers:
            await closer()
    log.info("stopped", service=service)
