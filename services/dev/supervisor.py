"""Keeps `conveyor dev`'s children running: one that exits is started again after a capped,
jittered backoff (reset once it has run a while), and each restart is said on dev's output.

The supervisor only restarts; whoever started a slot still stops it. `stop()` ends the
watching first, so that a child stopped on purpose is not started again.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TextIO

import structlog

from services.dev.processes import Slot
from services.dev.servers import wait_until
from shared.clock import CLOCK, Clock
from shared.errors import ConveyorError
from shared.retry import RetryPolicy

log = structlog.get_logger(__name__)
# A child that exits at once is started again after 0.5 s, 1 s, 2 s, … up to 30 s; one that
# ran for STEADY_SECONDS first counts as healthy, and its next restart is quick again.
RESTART_BACKOFF = RetryPolicy(max_attempts=1, base_delay=0.5, max_delay=30.0)
STEADY_SECONDS = 60.0

AfterRestart = Callable[[], Awaitable[str | None]]


@dataclass
class Supervisor:
    out: TextIO = field(default_factory=lambda: sys.stdout)
    backoff: RetryPolicy = RESTART_BACKOFF
    steady_seconds: float = STEADY_SECONDS
    clock: Clock = CLOCK
    _watchers: list[asyncio.Task[None]] = field(default_factory=list, init=False, repr=False)

    def watch(self, slot: Slot, after_restart: AfterRestart | None = None) -> None:
        """Restart `slot` whenever it exits; `after_restart` runs once a new start is ready
        and may return a line to print (e.g. what was re-seeded)."""
        self._watchers.append(asyncio.create_task(
            self._keep(slot, after_restart), name=f"supervise {slot.spec.name}"))

    async def stop(self) -> None:
        for watcher in self._watchers:
            watcher.cancel()
        await asyncio.gather(*self._watchers, return_exceptions=True)
        self._watchers.clear()

    def _say(self, text: str) -> None:
        print(f"conveyor dev: {text}", file=self.out, flush=True)

    async def _keep(self, slot: Slot, after_restart: AfterRestart | None) -> None:
        failures = 0
        started = self.clock.now()
        while True:
            code = await slot.child.process.wait()
            ran = self.clock.now() - started
            failures = 1 if ran >= self.steady_seconds else failures + 1
            delay = self.backoff.delay(failures)
            name = slot.spec.name
            self._say(f"{name} exited with code {code} after {ran:.0f}s; restarting it in "
                      f"{delay:.2f}s (its log: {slot.spec.log_path})")
            log.warning("child exited; restarting", child=name, code=code, delay=delay)
            await slot.child.stop()  # what it left in its process group goes too
            await self.clock.sleep(delay)  # the backoff itself, not a wait for an event
            try:
                slot.child = await slot.spec.start()
            except OSError as exc:  # e.g. out of file descriptors: try again, later
                self._say(f"{name} could not be started: {exc}")
                continue
            started = self.clock.now()
            if slot.ready is not None:
                try:
                    await wait_until(name, slot.child, slot.ready, slot.ready_within)
                except ConveyorError as exc:
                    self._say(f"{name} did not come back: {exc}")
                    await slot.child.stop()  # a hung start is ended, then tried again
                    continue
            note = None
            if after_restart is not None:
                try:
                    note = await after_restart()
                except Exception as exc:  # the supervision must go on whatever failed here
                    log.exception("after restart failed", child=name)
                    note = f"but what follows a restart failed: {exc}"
            self._say(f"{name} restarted (pid {slot.child.pid})" + (f"; {note}" if note else ""))
