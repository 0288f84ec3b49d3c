"""The sweeper's rounds on a fake clock: each sweep when it is due, none stopped by another's
failure, and the silence rule deaf for a whole silence period after the store was away."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any, cast

import pymongo.errors
from structlog.testing import capture_logs

from services.scheduler.machine import Machine
from services.scheduler.presence import Presence
from services.scheduler.sweeper import TICK, Sweeper
from shared.settings import Settings
from tests.fakeclock import FakeClock

SETTINGS = Settings(_env_file=None, task_silence_seconds=20.0, dispatch_timeout_seconds=8.0,
                    heartbeat_seconds=5.0)


class Recording(Sweeper):
    """A sweeper whose sweeps note when they ran; `silent` keeps the deafness rule."""

    def __init__(self, clock: FakeClock, connected: bool = True) -> None:
        link = SimpleNamespace(connected=asyncio.Event())
        if connected:
            link.connected.set()
        presence = cast(Presence, SimpleNamespace(connection=link))
        super().__init__(cast(Machine, None), presence, SETTINGS, clock)
        self.clock_ = clock
        self.ran: dict[str, list[float]] = {"lost_workers": [], "silent": [], "overdue": []}
        self.fail_lost_with: Exception | None = None

    def _note(self, name: str) -> None:
        self.ran[name].append(self.clock_.now() - 1000.0)

    async def lost_workers(self) -> int:
        self._note("lost_workers")
        if self.fail_lost_with is not None:
            raise self.fail_lost_with
        return 0

    async def silent(self) -> int:
        if self.clock_.now() >= self._deaf_until:
            self._note("silent")
        return 0

    async def overdue(self) -> int:
        self._note("overdue")
        return 0


async def ticks(sweeper: Sweeper, clock: FakeClock, count: int) -> None:
    for _ in range(count):
        await sweeper.tick()
        await clock.sleep(TICK)


async def test_each_sweep_runs_at_its_own_interval() -> None:
    clock = FakeClock()
    sweeper = Recording(clock)
    await ticks(sweeper, clock, 31)
    assert sweeper.ran["lost_workers"] == [float(t) for t in range(31)]
    assert sweeper.ran["overdue"] == [0.0, 2.0, 4.0, 6.0, 8.0, 10.0, 12.0, 14.0, 16.0, 18.0,
                                      20.0, 22.0, 24.0, 26.0, 28.0, 30.0]
    # Deaf for a silence period from the start (the heartbeats of no scheduler's time).
    assert sweeper.ran["silent"] == [20.0, 25.0, 30.0]


async def test_a_store_outage_in_one_sweep_neither_stops_the_others_nor_hears_silence() -> None:
    clock = FakeClock()
    sweeper = Recording(clock)
    await ticks(sweeper, clock, 21)
    sweeper.fail_lost_with = pymongo.errors.ServerSelectionTimeoutError("no server, x")
    with capture_logs() as logs:
        await ticks(sweeper, clock, 1)  # at 21 s
    sweeper.fail_lost_with = None
    await ticks(sweeper, clock, 30)
    assert [e["event"] for e in logs] == ["sweep skipped: store unavailable"]
    assert logs[0]["error"] == "no server"
    assert sweeper.ran["lost_workers"][-1] == 51.0
    assert 22.0 in sweeper.ran["overdue"]
    # Heard at 20 s, then deaf from the outage at 21 s until 41 s.
    assert sweeper.ran["silent"] == [20.0, 45.0, 50.0]


async def test_an_unexpected_failure_is_logged_and_the_next_tick_sweeps_again() -> None:
    clock = FakeClock()
    sweeper = Recording(clock)
    sweeper.fail_lost_with = RuntimeError("a bug")
    with capture_logs() as logs:
        await ticks(sweeper, clock, 2)
    assert [(e["event"], e["step"]) for e in logs] == [("sweep failed", "lost_workers")] * 2
    assert sweeper.ran["overdue"] == [0.0]


async def test_a_broker_away_keeps_the_silence_rule_deaf() -> None:
    clock = FakeClock()
    sweeper = Recording(clock, connected=False)
    await ticks(sweeper, clock, 40)
    assert sweeper.ran["silent"] == []
    cast(Any, sweeper.presence).connection.connected.set()
    await ticks(sweeper, clock, 26)
    # Back at 40 s; the tick at 39 s was the last deaf one: heard from 59 s on.
    assert sweeper.ran["silent"] == [60.0, 65.0]
