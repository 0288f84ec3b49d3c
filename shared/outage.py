"""Waiting out a dependency that is down, instead of spending a message's attempts on it.

A store outage says nothing about the message being handled: retrying it with backoff spends
its attempts (five of five seconds each are gone in under a minute) and then dead-letters a
perfectly good message. A consumer whose store is down holds the delivery instead, waits here
until the store answers again, and then handles the same delivery once more.

Which exceptions mean "down" is the dependency's to say (`down`): this module names no
client library, so a worker, which has no store, loads none."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import structlog

log = structlog.get_logger(__name__)
Probe = Callable[[], Awaitable[None]]
# A store that answers at once after a handler met it "down" this often was not down: the
# message itself fails, and goes the way of any failure.
HOLD_ROUNDS = 5


class Outage:
    """Every handler that meets one of the `down` exceptions waits in `wait_until_up`; one of
    them probes at a time (doubling pauses up to `max_pause`), and an answer lets all of them
    go."""

    def __init__(self, what: str, probe: Probe, down: tuple[type[BaseException], ...],
                 max_pause: float = 5.0, first_pause: float = 0.2) -> None:
        self.what = what
        self.probe = probe
        self.down = down
        self.max_pause = max_pause
        self.first_pause = first_pause
        self._lock = asyncio.Lock()
        self._generation = 0  # counts recoveries: a waiter that saw one need not probe

    async def wait_until_up(self, reason: BaseException) -> bool:
        """Returns once the dependency answers: True if it was found down meanwhile (by
        this caller or another), False if it answered the first probe (it was not down)."""
        seen = self._generation
        async with self._lock:
            if self._generation != seen:
                return True  # recovered while this one waited for the lock
            log.warning("dependency down; holding messages until it answers",
                        dependency=self.what, reason=str(reason) or type(reason).__name__)
            pause = self.first_pause
            loop = asyncio.get_running_loop()
            began = loop.time()
            down = False
            while True:
                await asyncio.sleep(pause)
                try:
                    await self.probe()
                except Exception:  # still down: the next probe decides
                    down = True
                    pause = min(self.max_pause, pause * 2)
                    continue
                if down:
                    self._generation += 1
                    log.info("dependency answers again", dependency=self.what,
                             down_seconds=round(loop.time() - began, 1))
                return down
