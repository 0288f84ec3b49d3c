"""The time the retry and periodic helpers wait on, as a seam: services use `CLOCK` (the
monotonic clock and `asyncio.sleep`); unit tests pass a fake that advances at once, so
they need no real sleeps."""

from __future__ import annotations

import asyncio
import time
from typing import Protocol


class Clock(Protocol):
    def now(self) -> float:
        """Seconds on a monotonic scale (only differences mean anything)."""
        ...

    async def sleep(self, seconds: float) -> None: ...


class MonotonicClock:
    def now(self) -> float:
        return time.monotonic()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


CLOCK: Clock = MonotonicClock()
