"""Background work an aiohttp app repeats for its whole lifetime (the outbox relay, GATE job
housekeeping): a cleanup context that runs a step every `interval` seconds and cancels it on
shutdown. A failed round is logged and the next one tries again: the loop never stops."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import structlog
from aiohttp import web

log = structlog.get_logger(__name__)
CleanupContext = Callable[[web.Application], AsyncIterator[None]]


def every(interval: float, step: Callable[[web.Application], Awaitable[Any]],
          what: str) -> CleanupContext:
    """A cleanup context running `step(app)` every `interval` seconds (first after one)."""

    async def context(app: web.Application) -> AsyncIterator[None]:
        async def loop() -> None:
            while True:
                await asyncio.sleep(interval)
                try:
                    await step(app)
                except Exception:  # the next round tries again
                    log.exception(f"{what} failed")

        task = asyncio.create_task(loop())
        yield
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    return context
