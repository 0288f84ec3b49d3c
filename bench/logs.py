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
from services.logger.ingest import entry_document
from services.logger.main import serve as serve_logger
from shared.broker import Publisher, open_amqp
from shared.messages import LogEntry
from shared.runtime import topology_for
from shared.settings import Settings
from shared.store import Document, Store
from shared.topology import LOGS_EXCHANGE


def entries(count: int) -> list[LogEntry]:
    now = datetime.now(UTC)
    return [LogEntry(job_id=f"benchjob{index // 1000:03d}", task_id=1, attempt=1,
                     seq=index % 1000, timestamp=now, message=f"frame {index} encoded")
            for index in range(count)]


async def logger_rate(settings: Settings, batch: list[LogEntry]) -> float:
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
        # Polled, not signalled: the logger runs as it does in production, with no hook
        # for the benchmark; a coarse poll keeps the count from competing with the inserts.
        while await logs.count_documents({}) < len(batch):  # noqa: ASYNC110
            await asyncio.sleep(0.1)
        elapsed = time.perf_counter() - started
        stop.set()
        await task
    finally:
        await client.drop_database(settings.mongo_db)
        await client.close()
    return len(batch) / elapsed


async def insert_many_rate(settings: Settings, batch: list[LogEntry]) -> float:
    """The same documents into a collection with the same indexes, no broker involved."""
    client: AsyncMongoClient[Document] = AsyncMongoClient(settings.mongo_url)
    name = f"{settings.mongo_db}_peer"
    try:
        await Store(client, client[name]).ensure_indexes(settings.log_retention_days)
        logs = client[name]["logs"]
        documents = [entry_document(e) for e in batch]
        size = settings.log_batch_size
        started = time.perf_counter()
        for start in range(0, len(documents), size):
            await logs.insert_many(documents[start:start + size], ordered=False)
        return len(batch) / (time.perf_counter() - started)
    finally:
        await client.drop_database(name)
        await client.close()


async def run(settings: Settings, count: int) -> list[dict[str, Any]]:
    batch = entries(count)
    ours = await logger_rate(settings, batch)
    peer = await insert_many_rate(settings, batch)
    return [row("log_ingest", ours, "entries/s", "insert_many", peer,
                f"{count} entries already queued when the logger starts; batches of "
                f"{settings.log_batch_size}; peer: same documents, batch size and indexes, "
                "no broker (the store's ceiling)")]
