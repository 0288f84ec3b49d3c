"""What every benchmark shares: the servers it runs against, and the result row."""

from __future__ import annotations

import os
import sys
import tempfile
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from aiormq.exceptions import AMQPError

from services.dev.main import amqp_answers
from services.dev.servers import LocalServers
from shared.broker import open_amqp
from shared.errors import ConveyorError
from shared.settings import Settings, load_settings
from shared.teardown import delete_by_prefix, vhost_of


@asynccontextmanager
async def bench_settings() -> AsyncIterator[Settings]:
    """Settings on real servers: those named by CONVEYOR_* variables, else local stand-ins
    (nx-27017, moto_server, a private RabbitMQ node when none answers), with names of this
    run only."""
    servers = LocalServers()
    data = Path(tempfile.mkdtemp(prefix="conveyor-bench-"))
    try:
        base = load_settings()
        update: dict[str, Any] = {
            "amqp_prefix": f"bench-{uuid.uuid4().hex[:8]}.",
            "mongo_db": f"bench_{uuid.uuid4().hex[:8]}",
            "gateway_port": 0, "scheduler_port": 0, "logger_port": 0, "worker_port": 0,
            "log_format": "json", "log_level": "warning",
        }
        if "CONVEYOR_MONGO_URL" not in os.environ:
            update["mongo_url"] = await servers.start_mongo(data)
        if "CONVEYOR_S3_ENDPOINT" not in os.environ:
            update["s3_endpoint"] = await servers.start_s3(data)
        if not await amqp_answers(base.amqp_url):
            update["amqp_url"] = await servers.start_rabbitmq(data)
        settings = base.model_copy(update=update)
        try:
            yield settings
        finally:
            await remove_queues(settings, settings.amqp_prefix)
    finally:
        await servers.stop()


async def remove_queues(settings: Settings, *prefixes: str) -> None:
    """The queues and exchanges a run declared under `prefixes`, removed: the broker may be
    the machine's shared one, which a benchmark must leave as it found it."""
    try:
        async with open_amqp(settings, "conveyor-bench") as connection:
            for prefix in prefixes:
                await delete_by_prefix(connection, prefix, regions=settings.regions,
                                       max_delay_seconds=settings.retry_max_delay,
                                       vhost=vhost_of(settings.amqp_url))
    except (ConveyorError, AMQPError, ConnectionError) as exc:
        print(f"bench: could not remove the queues of {', '.join(prefixes)}: {exc}; run "
              f"`conveyor admin topology delete --prefix PREFIX`", file=sys.stderr, flush=True)


def row(name: str, value: float, unit: str, peer: str, peer_value: float,
        notes: str) -> dict[str, Any]:
    """Ratio = ours / peer's, both oriented so that higher is better."""
    return {"name": name, "value": round(value, 1), "unit": unit, "peer": peer,
            "peer_value": round(peer_value, 1), "ratio": round(value / peer_value, 2),
            "notes": notes}
