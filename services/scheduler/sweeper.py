"""Finds running tasks whose worker went silent and has them tried again. Runs beside the
consumers (and, like them, in every scheduler replica: the retry is a conditional update,
so two sweepers never retry a task twice)."""

from __future__ import annotations

import asyncio
import contextlib

import structlog

from services.scheduler.machine import Machine

log = structlog.get_logger(__name__)


class Sweeper:
    queue = "sweeper"
    in_flight = 0

    def __init__(self, machine: Machine, silence: float) -> None:
        self.machine = machine
        self.silence = silence
        self.interval = max(0.5, silence / 4)
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._task = asyncio.create_task(self._loop())

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            try:
                await self.machine.sweep(self.silence)
            except Exception:  # the next round tries again; a sweep must not end the loop
                log.exception("sweep failed")

    async def stop(self, grace: float) -> None:
        del grace
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
