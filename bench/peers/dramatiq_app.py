"""Dramatiq on its RabbitMQ broker (persistent messages, acks after the actor ran, publisher
confirms): `dramatiq bench.peers.dramatiq_app -p 2 -t 8`."""

from __future__ import annotations

import os

import dramatiq
from dramatiq.brokers.rabbitmq import RabbitmqBroker

from bench.peers.marks import mark

broker = RabbitmqBroker(url=os.environ.get("BENCH_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/"),
                        confirm_delivery=True)
dramatiq.set_broker(broker)
QUEUE = os.environ.get("BENCH_QUEUE", "bench-dramatiq")


@dramatiq.actor(queue_name=QUEUE, max_retries=0)
def noop(published: float) -> None:
    mark(published)
