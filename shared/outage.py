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

from shared.clock import CLOCK, Clock
from shared.retry import FOREVER, RetryPolicy

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
                 max_pause: float = 5.0, first_pause: float = 0.2,
                 clock: Clock = CLOCK) -> None:
        self.what = what
        self.probe = probe
        self.down = down
        self.pauses = RetryPolicy(max_attempts=FOREVER, base_delay=first_pause,
                                  max_delay=max_pause, jitter=0.0)
        self.clock = clock
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
            began = self.clock.now()
            down = False
            probes = 0
            while True:
                probes += 1
                await self.clock.sleep(self.pauses.delay(probes))
                try:
                    await self.probe()
                except Exception:  # still down: the next probe decides
                    down = True
                    continue
                if down:
                    self._generation += 1
                    log.info("dependency answers again", dependency=self.what,
                             down_seconds=round(self.clock.now() - began, 1))
                return down
