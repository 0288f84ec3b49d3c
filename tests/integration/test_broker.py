"""The messaging helpers against a real RabbitMQ."""

from __future__ import annotations

import asyncio

import aio_pika
import pytest

from shared.consumer import Delivery
from shared.errors import PublishError, Retry
from shared.messages import JobSubmitted, decode
from shared.runtime import Broker
from shared.settings import Settings
from shared.topology import (
    DEAD_AT_HEADER,
    JOBS_EXCHANGE,
    REASON_HEADER,
    SCHEDULER_JOBS,
    SOURCE_QUEUE_HEADER,
    TASKS_EXCHANGE,
    dead_queue,
)
from tests.messaging import assert_empty, wait_for_message


def job_message(job_id: str = "job00000001") -> JobSubmitted:
    return JobSubmitted.model_validate(
        {"job_id": job_id, "spec": {"tasks": [{"tool": "debug:sleep"}]}}
    )


async def test_topology_declared_twice_is_harmless(broker: Broker) -> None:
    sent = job_message()
    await broker.publisher.publish(JOBS_EXCHANGE, "job.submitted", sent)
    await broker.topology.declare(broker.publisher.channel)
    await broker.topology.declare(broker.publisher.channel)
    message = await wait_for_message(broker, SCHEDULER_JOBS)
    assert decode(message.body) == sent
    await assert_empty(broker, SCHEDULER_JOBS)


async def test_round_trip_with_confirms(broker: Broker) -> None:
    received: asyncio.Queue[Delivery] = asyncio.Queue()

    async def handler(delivery: Delivery) -> None:
        await received.put(delivery)

    consumer = broker.consumer(SCHEDULER_JOBS, handler)
    await consumer.start()
    sent = [job_message(f"job{index:08d}") for index in range(20)]
    await broker.publisher.publish_many(
        (JOBS_EXCHANGE, "job.submitted", message) for message in sent
    )
    got = [await asyncio.wait_for(received.get(), 10) for _ in sent]
    await consumer.stop(grace=5)
    assert sorted(d.message.message_id for d in got) == sorted(m.message_id for m in sent)
    assert all(d.attempt == 1 for d in got)
    # Closing the consuming channel would requeue anything left unacked.
    await broker.channel.close()
    await assert_empty(broker, SCHEDULER_JOBS)


async def test_failing_message_is_retried_with_delay_then_dead_lettered(
    broker: Broker, settings: Settings
) -> None:
    attempts: list[tuple[int, float]] = []
    loop = asyncio.get_running_loop()

    async def handler(delivery: Delivery) -> None:
        attempts.append((delivery.attempt, loop.time()))
        raise Retry("storage is busy", delay=0.3)

    consumer = broker.consumer(SCHEDULER_JOBS, handler)
    await consumer.start()
    await broker.publisher.publish(JOBS_EXCHANGE, "job.submitted", job_message())
    dead = await wait_for_message(broker, dead_queue(SCHEDULER_JOBS), within=20)
    await consumer.stop(grace=5)

    assert [attempt for attempt, _ in attempts] == list(range(1, settings.max_attempts + 1))
    times = [at for _, at in attempts]
    gaps = [later - earlier for earlier, later in zip(times, times[1:], strict=False)]
    assert all(gap >= 0.25 for gap in gaps), gaps  # each retry waited in the delay queue
    headers = dead.headers
    assert headers[REASON_HEADER] == (
        f"gave up after {settings.max_attempts} attempts: Retry: storage is busy"
    )
    assert headers[SOURCE_QUEUE_HEADER] == SCHEDULER_JOBS
    assert headers[DEAD_AT_HEADER]
    assert decode(dead.body).job_id == job_message().job_id


async def test_backoff_from_policy_when_no_delay_is_given(broker: Broker) -> None:
    times: list[float] = []
    loop = asyncio.get_running_loop()
    done = asyncio.Event()

    async def handler(delivery: Delivery) -> None:
        times.append(loop.time())
        if delivery.attempt < 3:
            raise Retry("again")
        done.set()

    consumer = broker.consumer(SCHEDULER_JOBS, handler)
    await consumer.start()
    await broker.publisher.publish(JOBS_EXCHANGE, "job.submitted", job_message())
    await asyncio.wait_for(done.wait(), 15)
    await consumer.stop(grace=5)
    # retry_base_delay is 0.2 s in tests: the first wait is at least half of it (jitter).
    assert times[1] - times[0] >= 0.09
    await assert_empty(broker, dead_queue(SCHEDULER_JOBS))


async def test_invalid_message_is_dead_lettered_with_reason(broker: Broker) -> None:
    calls = 0

    async def handler(delivery: Delivery) -> None:
        nonlocal calls
        calls += 1

    consumer = broker.consumer(SCHEDULER_JOBS, handler)
    await consumer.start()
    exchange = await broker.publisher.channel.get_exchange(
        broker.topology.name(JOBS_EXCHANGE)
    )
    await exchange.publish(aio_pika.Message(b'{"type": "job.submitted"}'), "job.submitted")
    dead = await wait_for_message(broker, dead_queue(SCHEDULER_JOBS))
    await consumer.stop(grace=5)
    assert calls == 0
    assert "invalid message" in str(dead.headers[REASON_HEADER])
    assert "job_id: Field required" in str(dead.headers[REASON_HEADER])


async def test_unexpected_error_is_dead_lettered(broker: Broker) -> None:
    async def handler(delivery: Delivery) -> None:
        raise ZeroDivisionError("boom")

    consumer = broker.consumer(SCHEDULER_JOBS, handler)
    await consumer.start()
    await broker.publisher.publish(JOBS_EXCHANGE, "job.submitted", job_message())
    dead = await wait_for_message(broker, dead_queue(SCHEDULER_JOBS))
    await consumer.stop(grace=5)
    assert dead.headers[REASON_HEADER] == "unexpected ZeroDivisionError: boom"


async def test_unroutable_publish_raises(broker: Broker) -> None:
    with pytest.raises(PublishError, match="unroutable"):
        await broker.publisher.publish(TASKS_EXCHANGE, "no-such-region", job_message())
    # The channel survives the returned message and keeps publishing.
    await broker.publisher.publish(JOBS_EXCHANGE, "job.submitted", job_message("routable01"))
    message = await wait_for_message(broker, SCHEDULER_JOBS)
    assert decode(message.body).job_id == "routable01"


async def test_stop_hands_back_unfinished_work_at_once(broker: Broker) -> None:
    started = asyncio.Event()

    async def handler(delivery: Delivery) -> None:
        started.set()
        await asyncio.sleep(60)

    consumer = broker.consumer(SCHEDULER_JOBS, handler)
    await consumer.start()
    await broker.publisher.publish(JOBS_EXCHANGE, "job.submitted", job_message())
    await asyncio.wait_for(started.wait(), 10)
    await consumer.stop(grace=0.2)
    message = await wait_for_message(broker, SCHEDULER_JOBS, within=5)
    assert message.redelivered

