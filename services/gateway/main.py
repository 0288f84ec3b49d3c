"""`conveyor gateway`: serve the API until SIGTERM, then let open requests finish."""

from __future__ import annotations

import structlog

from services.gateway.app import create_app
from shared.health import serve_app
from shared.runtime import run_service, stop_event
from shared.settings import Settings

log = structlog.get_logger(__name__)


async def serve(settings: Settings) -> None:
    stop = stop_event()
    app = create_app(settings)
    async with serve_app(app, settings.bind_host, settings.gateway_port) as port:
        log.info("gateway ready", host=settings.bind_host, port=port)
        await stop.wait()
        log.info("gateway stopping")
    log.info("gateway stopped")


def main(settings: Settings) -> int:
    return run_service("gateway", lambda: serve(settings))
