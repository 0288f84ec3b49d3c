"""The one loop of work repeated for a process's whole life (the scheduler's sweeps, a
worker's sweep of stale uploads and a task's heartbeat, the gateway's outbox relay and GATE
housekeeping): a task its owner starts and stops, running a step every `interval` seconds.
A failed round is logged and the next one tries again: the loop never ends by itself."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import structlog
from aiohttp import web

from shared.clock import CLOCK, Clock

log = structlog.get_logger(__name__)
CleanupContext = Callable[[web.Application], AsyncIterator[None]]


class Periodic:
    """`step()` every `interval` seconds, the first at once with `at_start`, else after one
    interval; the interval runs from the end of one round to the start of the next, so
    rounds never overlap. A failure of a kind in `expected` (a dependency away) is one line
    of warning; any other is logged with its traceback."""

    def __init__(self, what: str, step: Callable[[], Awaitable[Any]], interval: float, *,
                 at_start: bool = False, expected: tuple[type[Exception], ...] = (),
                 clock: Clock = CLOCK) -> None:
        if not interval > 0:
            raise ValueError(f"interval of {what} must be above 0 seconds, not {interval}")
        self.what = what
        self.step = step
        self.interval = interval
        self.at_start = at_start
        self.expected = expected
        self.clock = clock
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._loop(), name=self.what)

    async def stop(self) -> None:
        """Cancel the loop (a round under way too) and wait until it has ended."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _loop(self) -> None:
        if not self.at_start:
            await self.clock.sleep(self.interval)
        while True:
            try:
                await self.step()
            except self.expected as exc:
                log.warning(f"{self.what} failed", error=str(exc) or type(exc).__name__)
            except Exception:  # the next round tries again
                log.exception(f"{self.what} failed")
            await self.clock.sleep(self.interval)


def every(interval: float, step: Callable[[web.Application], Awaitable[Any]],
          what: str, clock: Clock = CLOCK) -> CleanupContext:
    """An aiohttp cleanup context running `step(app)` every `interval` seconds (first after
    one) from the app's start to its shutdown."""

    async def context(app: web.Application) -> AsyncIterator[None]:
        periodic = Periodic(what, lambda: step(app), interval, clock=clock)
        periodic.start()
        yield
        await periodic.stop()

    return context
