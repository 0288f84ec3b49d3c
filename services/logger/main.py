"""`conveyor logger`: store task log entries in batches, and serve them, until SIGTERM."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from aiohttp import web

from services.logger.ingest import LogWriter
from services.logger.views import LIMITER, add_log_routes
from shared.api import STORE, dependency_middleware, error_middleware
from shared.auth import auth_middleware
from shared.consumer import Consuming
from shared.messages import LogBatch, LogEntry
from shared.ratelimit import Limit, MongoWindows, RateLimiter
from shared.routing import add_head_and_options
from shared.runtime import Resources, run_service, serve_consumers
from shared.settings import Settings
from shared.store import open_store
from shared.topology import LOGGER_ENTRIES


def limiter(resources: Resources, settings: Settings) -> RateLimiter:
    return RateLimiter(MongoWindows(resources.need_store().rate_limits), "logs", [
        Limit("minute", settings.log_rate_per_minute, 60),
        Limit("day", settings.log_rate_per_day, 86_400),
    ])


async def serve(
    settings: Settings, stop: asyncio.Event | None = None, ready: asyncio.Event | None = None
) -> None:
    def wire(resources: Resources) -> Sequence[Consuming]:
        writer = LogWriter(resources.need_store(), settings.log_batch_size)
        # Workers send up to 100 lines a message: a batch of messages holds many more lines,
        # which are stored `log_batch_size` at a time.
        return [resources.broker.batch_consumer(
            LOGGER_ENTRIES, writer.write, max_batch=max(1, settings.log_batch_size // 10),
            max_wait=settings.log_batch_wait_ms / 1000, accepts=(LogEntry, LogBatch),
            outage=resources.store_outage(),
        )]

    def http(resources: Resources) -> web.Application:
        app = web.Application(
            middlewares=[error_middleware, dependency_middleware, auth_middleware])
        app[STORE] = resources.need_store()
        app[LIMITER] = limiter(resources, settings)
        add_log_routes(app)
        add_head_and_options(app)
        return app

    # A batch is acked only once stored, so the prefetch must hold more than one batch.
    await serve_consumers(
        settings, "logger", port=settings.logger_port, prefetch=2 * settings.log_batch_size,
        wire=wire, http=http, store=open_store, stop=stop, ready=ready,
    )


def main(settings: Settings) -> int:
    return run_service("logger", lambda: serve(settings))
