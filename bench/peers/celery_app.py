"""Celery with at-least-once settings: late acks, persistent messages, prefetch 1 per process
(`celery -A bench.peers.celery_app worker -P prefork -c 2`)."""

from __future__ import annotations

import os

from celery import Celery

from bench.peers.marks import mark

app = Celery("bench", broker=os.environ.get("BENCH_AMQP_URL", "amqp://guest:guest@127.0.0.1//"))
app.conf.update(
    task_acks_late=True,
    task_reject_on_worker_lost=True,
    worker_prefetch_multiplier=1,
    task_default_queue=os.environ.get("BENCH_QUEUE", "bench-celery"),
    task_default_delivery_mode="persistent",
    broker_connection_retry_on_startup=True,
    task_ignore_result=True,
    worker_hijack_root_logger=False,
)


@app.task(name="noop")
def noop(published: float) -> None:
    mark(published)
