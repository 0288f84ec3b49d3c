"""`log_ingest`: log entries/s from RabbitMQ into the store through the logger (batched
`insert_many`, acked once durable), against the same entries written with bare
`insert_many` batches (the store's own ceiling)."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime
from typing import Any

from pymongo import AsyncMongoClient

from bench.common import row
from services.logger.ingest import documents, position
from services.logger.main import serve as serve_logger
from shared.broker import Publisher, open_amqp
from shared.messages import LogBatch, LogLine
from shared.runtime import topology_for
from shared.settings import Settings
from shared.store import Document, Store
from shared.topology import LOGS_EXCHANGE

LINES_PER_MESSAGE = 100  # as workers send them (services/worker/context.py)


def entries(count: int) -> list[LogBatch]:
    """`count` log lines in messages of LINES_PER_MESSAGE, as workers publish them."""
    now = datetime.now(UTC)
    return [
        LogBatch(job_id=f"benchjob{first // 1000:03d}", task_id=1, attempt=1, lines=[
            LogLine(seq=index % 1000, timestamp=now, message=f"frame {index} encoded")
            for index in range(first, min(count, first + LINES_PER_MESSAGE))])
        for first in range(0, count, LINES_PER_MESSAGE)
    ]


def lines(batch: list[LogBatch]) -> int:
    return sum(len(message.lines) for message in batch)


async def logger_rate(settings: Settings, batch: list[LogBatch]) -> float:
    topology = topology_for(settings)
    async with open_amqp(settings, "bench") as connection:
        publisher = await Publisher.open(connection, topology)
        await topology.declare(publisher.channel)
        await publisher.publish_many((LOGS_EXCHANGE, "log.local", e) for e in batch)
        await publisher.close()
    client: AsyncMongoClient[Document] = AsyncMongoClient(settings.mongo_url)
    stop, ready = asyncio.Event(), asyncio.Event()
    try:
        task = asyncio.create_task(serve_logger(settings, stop=stop, ready=ready))
        await ready.wait()
        started = time.perf_counter()
        logs = client[settings.mongo_db]["logs"]
        # Polled, not signalled: the logger runs as it does in production, with no hook for
        # the benchmark. The poll looks up the very last line by its unique index (cheap),
        # rather than counting (which would compete with the inserts it measures); batches
        # are stored in order, so the last line arrives last.
        last = batch[-1]
        final = {"job_id": last.job_id, "task_id": last.task_id,
                 "position": position(last.attempt, last.lines[-1].seq)}
        while await logs.find_one(final) is None:  # noqa: ASYNC110
            await asyncio.sleep(0.02)
        elapsed = time.perf_counter() - started
        stop.set()
        await task
    finally:
        await client.drop_database(settings.mongo_db)
        await client.close()
    return lines(batch) / elapsed


async def insert_many_rate(settings: Settings, batch: list[LogBatch]) -> float:
    """The same documents into a collection with the same indexes, no broker involved."""
    client: AsyncMongoClient[Document] = AsyncMongoClient(settings.mongo_url)
    name = f"{settings.mongo_db}_peer"
    try:
        await Store(client, client[name]).ensure_indexes(settings.log_retention_days)
        logs = client[name]["logs"]
        rows = documents(list(batch))
        size = settings.log_batch_size
        started = time.perf_counter()
        for start in range(0, len(rows), size):
            await logs.insert_many(rows[start:start + size], ordered=False)
        return len(rows) / (time.perf_counter() - started)
    finally:
        await client.drop_database(name)
        await client.close()


async def run(settings: Settings, count: int) -> list[dict[str, Any]]:
    batch = entries(count)
    ours = await logger_rate(settings, batch)
    peer = await insert_many_rate(settings, batch)
    return [row("log_ingest", ours, "entries/s", "insert_many", peer,
                f"{count} entries ({LINES_PER_MESSAGE} a message, as workers send them) already "
                f"queued when the logger starts; batches of "
                f"{settings.log_batch_size}; peer: same documents, batch size and indexes, "
                "no broker (the store's ceiling)")]
