"""`conveyor logger`: store task log entries until SIGTERM."""

from __future__ import annotations

import asyncio

from services.logger.handlers import LogWriter
from shared.consumer import Consumer
from shared.runtime import Resources, run_service, serve_consumers
from shared.settings import Settings
from shared.topology import LOGGER_ENTRIES


def wire(resources: Resources) -> list[Consumer]:
    return [resources.broker.consumer(LOGGER_ENTRIES, LogWriter(resources.need_store()).on_entry)]


async def serve(
    settings: Settings, stop: asyncio.Event | None = None, ready: asyncio.Event | None = None
) -> None:
    await serve_consumers(
        settings, "logger", port=settings.logger_port, prefetch=settings.prefetch,
        wire=wire, use_store=True, stop=stop, ready=ready,
    )


def main(settings: Settings) -> int:
    return run_service("logger", lambda: serve(settings))
