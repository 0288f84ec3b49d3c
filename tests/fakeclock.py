"""A clock for unit tests of what waits (`shared.clock.Clock`): a sleep returns at once,
having moved the time on and noted how long it was asked for."""

from __future__ import annotations

import asyncio


class FakeClock:
    def __init__(self, start: float = 1000.0) -> None:
        self.time = start
        self.slept: list[float] = []

    def now(self) -> float:
        return self.time

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.time += seconds
        await asyncio.sleep(0)  # others run meanwhile, as in a real sleep
