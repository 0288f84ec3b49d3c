"""The consumer's outcome table (shared/consumer.py's docstring), driven through a fake
channel and deliveries: what each way a handler ends does to the message."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import pytest
from pymongo.errors import AutoReconnect

from shared.consumer import Consumer, Delivery
from shared.errors import PermanentError, Retry, TransientError
from shared.messages import JobControl
from shared.outage import HOLD_ROUNDS, Outage
from shared.retry import RetryPolicy
from shared.topology import (
    ATTEMPT_HEADER,
    DEAD_EXCHANGE,
    REASON_HEADER,
    SCHEDULER_JOBS,
    SOURCE_QUEUE_HEADER,
)
from tests.fakeclock import FakeClock
from tests.fakes import CONNECTION_LOST, FakeIncoming, FakePublisher, FakeQueue, fake_store

POLICY = RetryPolicy(max_attempts=3, base_delay=2.0, max_delay=10.0, jitter=0.0)
WAIT = 5.0  # seconds a test waits for an outcome before it fails
Handler = Callable[[Delivery], Awaitable[None]]


class Rig:
    """A consumer of `scheduler.jobs` on a fake channel, and the handler's calls."""

    def __init__(self, handler: Handler, outage: Outage | None = None) -> None:
        self.publisher = FakePublisher()
        self.channel = self.publisher.fake_channel
        self.calls: list[Delivery] = []
        self.redelivered: list[bool] = []  # as each call saw it (the delivery is one object)

        async def recorded(delivery: Delivery) -> None:
            self.calls.append(delivery)
            self.redelivered.append(delivery.redelivered)
            await handler(delivery)

        self.consumer = Consumer(self.channel.typed, self.publisher, SCHEDULER_JOBS, recorded,
                                 POLICY, outage)

    async def deliver(self, attempt: int | None = None, body: bytes | None = None,
                      settles: bool = True) -> FakeIncoming:
        """Hand the consumer one message; returns once it is settled (or, if it should not
        be, once the handler ended)."""
        await self.consumer.start()
        order = JobControl(job_id="j1", action="stop")
        headers = {} if attempt is None else {ATTEMPT_HEADER: attempt}
        incoming = FakeIncoming.of(order, self.channel, **headers)
        if body is not None:
            incoming.body = body
        await self.queue.deliver(incoming)
        if settles:
            await asyncio.wait_for(incoming.settled.wait(), WAIT)
        await self.consumer.stop(grace=WAIT)
        return incoming

    @property
    def queue(self) -> FakeQueue:
        return self.channel.queues["unit.scheduler.jobs"]


def raising(error: BaseException) -> Handler:
    async def handler(delivery: Delivery) -> None:
        raise error
    return handler


async def fine(delivery: Delivery) -> None:
    return None


async def test_a_handler_that_returns_acks() -> None:
    rig = Rig(fine)
    incoming = await rig.deliver()
    assert incoming.outcome == "ack"
    assert rig.publisher.sent == []
    assert isinstance(rig.calls[0].message, JobControl)
    assert (rig.calls[0].attempt, rig.calls[0].redelivered) == (1, False)


@pytest.mark.parametrize(("error", "delay_ms"), [
    (TransientError("flaky"), 2000),  # the policy's delay after attempt 1
    (Retry("later", delay=7.0), 7000),  # the handler's own delay
])
async def test_a_transient_failure_is_republished_after_a_delay_then_acked(
    error: BaseException, delay_ms: int
) -> None:
    rig = Rig(raising(error))
    incoming = await rig.deliver()
    assert incoming.outcome == "ack"
    [retry] = rig.publisher.sent
    queue = f"unit.delay.scheduler.jobs.{delay_ms}"
    assert (retry.exchange, retry.routing_key) == ("", queue)
    assert rig.channel.queues[queue].arguments["x-message-ttl"] == delay_ms
    assert retry.headers[ATTEMPT_HEADER] == 2
    assert str(error) in retry.headers[REASON_HEADER]
    assert retry.message.body == incoming.body


async def test_the_last_attempt_of_a_transient_failure_is_dead_lettered() -> None:
    rig = Rig(raising(TransientError("still flaky")))
    incoming = await rig.deliver(attempt=POLICY.max_attempts)
    assert incoming.outcome == "ack"
    [dead] = rig.publisher.sent
    assert (dead.exchange, dead.routing_key) == (DEAD_EXCHANGE, SCHEDULER_JOBS)
    assert dead.headers[REASON_HEADER].startswith("gave up after 3 attempts: TransientError")
    assert dead.headers[SOURCE_QUEUE_HEADER] == SCHEDULER_JOBS


@pytest.mark.parametrize(("handler", "reason"), [
    (raising(PermanentError("no such job")), "PermanentError: no such job"),
    (raising(KeyError("tasks")), "unexpected KeyError: 'tasks'"),
])
async def test_permanent_and_unexpected_failures_are_dead_lettered(
    handler: Handler, reason: str
) -> None:
    rig = Rig(handler)
    incoming = await rig.deliver()
    assert incoming.outcome == "ack"
    [dead] = rig.publisher.sent
    assert (dead.exchange, dead.headers[REASON_HEADER]) == (DEAD_EXCHANGE, reason)


async def test_a_store_error_without_an_outage_to_wait_on_is_unexpected() -> None:
    rig = Rig(raising(AutoReconnect("down")))
    incoming = await rig.deliver()
    [dead] = rig.publisher.sent
    assert (incoming.outcome, dead.exchange) == ("ack", DEAD_EXCHANGE)
    assert dead.headers[REASON_HEADER] == "unexpected AutoReconnect: down"


async def test_an_undecodable_body_is_dead_lettered_unhandled() -> None:
    rig = Rig(fine)
    incoming = await rig.deliver(body=b'{"type": "job.control"')
    assert incoming.outcome == "ack"
    assert rig.calls == []
    [dead] = rig.publisher.sent
    assert dead.exchange == DEAD_EXCHANGE
    assert dead.message.body == b'{"type": "job.control"'


async def test_a_lost_broker_connection_makes_no_copy() -> None:
    rig = Rig(fine)

    async def channel_dies(delivery: Delivery) -> None:
        rig.channel.is_closed = True
        raise CONNECTION_LOST("connection closed")

    rig.consumer.handler = channel_dies
    incoming = await rig.deliver(settles=False)
    # The broker took the delivery back with its channel: nothing is published or settled.
    assert (incoming.outcome, rig.publisher.sent) == (None, [])


async def test_a_retry_the_broker_refuses_leaves_the_message_unsettled() -> None:
    rig = Rig(raising(TransientError("flaky")))
    rig.publisher.fail(CONNECTION_LOST("broker went away"))
    incoming = await rig.deliver(settles=False)
    assert (incoming.outcome, rig.publisher.sent) == (None, [])  # redelivered by the broker


async def test_a_handler_that_settled_its_message_first_is_not_dead_lettered() -> None:
    async def acks_then_fails(delivery: Delivery) -> None:
        await delivery.ack_now()
        raise PermanentError("after the ack")

    rig = Rig(acks_then_fails)
    incoming = await rig.deliver()
    assert (incoming.outcome, rig.publisher.sent) == ("ack", [])


async def test_a_store_outage_holds_the_message_until_the_store_answers() -> None:
    store = fake_store()
    store.down = True
    probes: list[int] = []

    async def probe() -> None:
        probes.append(store.reach.calls)
        if len(probes) == 2:  # the store is back by the second probe
            store.down = False
        await store.ping()

    async def reads(delivery: Delivery) -> None:
        await store.jobs.find_one({"_id": "j1"})

    rig = Rig(reads, Outage("mongodb", probe, store.outage().down, clock=FakeClock()))
    incoming = await rig.deliver()
    assert incoming.outcome == "ack"
    assert rig.publisher.sent == []  # no attempt spent, nothing republished
    assert len(probes) == 2
    assert not store.down
    assert rig.redelivered == [False, True]
    assert {d.attempt for d in rig.calls} == {1}


async def test_a_store_error_while_the_store_answers_is_retried_after_some_rounds() -> None:
    async def answers() -> None:
        return None

    rig = Rig(raising(AutoReconnect("one bad query")),
              Outage("mongodb", answers, (AutoReconnect,), clock=FakeClock()))
    incoming = await rig.deliver()
    assert len(rig.calls) == HOLD_ROUNDS
    [retry] = rig.publisher.sent
    assert (retry.exchange, retry.headers[ATTEMPT_HEADER]) == ("", 2)
    assert incoming.outcome == "ack"


async def test_a_handler_still_running_at_shutdown_is_handed_back() -> None:
    started = asyncio.Event()

    async def slow(delivery: Delivery) -> None:
        started.set()
        await asyncio.Event().wait()  # never ends by itself

    rig = Rig(slow)
    await rig.consumer.start()
    incoming = FakeIncoming.of(JobControl(job_id="j1", action="stop"), rig.channel)
    await rig.queue.deliver(incoming)
    await asyncio.wait_for(started.wait(), WAIT)
    callback = rig.queue.callback
    await rig.consumer.stop(grace=0)
    assert (incoming.outcome, rig.publisher.sent) == ("requeue", [])
    late = FakeIncoming.of(JobControl(job_id="j2", action="stop"), rig.channel)
    assert callback is not None
    await callback(late)  # a delivery the broker sent as consuming stopped
    assert late.outcome == "requeue"
