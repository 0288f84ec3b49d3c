"""`Periodic` and `every`: work repeated for a process's life, surviving failed rounds, driven
by a fake clock (no real sleeps)."""

from __future__ import annotations

import asyncio

import pytest
from aiohttp import web
from structlog.testing import capture_logs

from shared.periodic import Periodic, every
from tests.fakeclock import FakeClock


class Rounds:
    """A step that notes when it ran, fails where told, and says when it ran `until` times."""

    def __init__(self, clock: FakeClock, until: int, fail: dict[int, Exception]) -> None:
        self.clock = clock
        self.until = until
        self.fail = fail
        self.times: list[float] = []
        self.done = asyncio.Event()

    async def __call__(self) -> None:
        self.times.append(self.clock.now() - 1000.0)
        if len(self.times) >= self.until:
            self.done.set()
        failure = self.fail.get(len(self.times))
        if failure is not None:
            raise failure


async def run(periodic: Periodic, rounds: Rounds) -> None:
    periodic.start()
    await asyncio.wait_for(rounds.done.wait(), 5)
    await periodic.stop()


async def test_rounds_come_every_interval_and_outlive_failures() -> None:
    clock = FakeClock()
    rounds = Rounds(clock, 4, {1: RuntimeError("the first round fails")})
    periodic = Periodic("test work", rounds, 30.0, clock=clock)
    with capture_logs() as logs:
        await run(periodic, rounds)
    assert rounds.times[:4] == [30.0, 60.0, 90.0, 120.0]
    [failure] = [e for e in logs if e["log_level"] == "error"]
    assert failure["event"] == "test work failed"
    assert failure["exc_info"] is True


async def test_at_start_runs_the_first_round_at_once() -> None:
    clock = FakeClock()
    rounds = Rounds(clock, 3, {})
    await run(Periodic("sweep", rounds, 3600.0, at_start=True, clock=clock), rounds)
    assert rounds.times[:3] == [0.0, 3600.0, 7200.0]


async def test_an_expected_failure_is_one_line_of_warning() -> None:
    clock = FakeClock()
    rounds = Rounds(clock, 2, {1: ConnectionError("S3 is away")})
    periodic = Periodic("sweep", rounds, 1.0, expected=(OSError,), clock=clock)
    with capture_logs() as logs:
        await run(periodic, rounds)
    assert [(e["log_level"], e["event"], e.get("error")) for e in logs] == [
        ("warning", "sweep failed", "S3 is away")]


async def test_stop_cancels_a_round_under_way_and_nothing_runs_after() -> None:
    began = asyncio.Event()
    cancelled = asyncio.Event()
    calls = 0

    async def step() -> None:
        nonlocal calls
        calls += 1
        began.set()
        try:
            await asyncio.Event().wait()  # a round that would never end by itself
        except asyncio.CancelledError:
            cancelled.set()
            raise

    periodic = Periodic("stuck", step, 1.0, at_start=True, clock=FakeClock())
    periodic.start()
    await asyncio.wait_for(began.wait(), 5)
    await asyncio.wait_for(periodic.stop(), 5)
    assert cancelled.is_set()
    for _ in range(10):
        await asyncio.sleep(0)
    assert calls == 1


@pytest.mark.parametrize("interval", [0.0, -1.0, float("nan")])
def test_an_interval_not_above_zero_is_refused(interval: float) -> None:
    with pytest.raises(ValueError, match="interval of relay must be above 0"):
        Periodic("relay", lambda: asyncio.sleep(0), interval)


async def test_every_runs_beside_an_app_and_stops_with_it() -> None:
    clock = FakeClock()
    calls: list[web.Application] = []
    third = asyncio.Event()
    app = web.Application()

    async def step(given: web.Application) -> None:
        calls.append(given)
        if len(calls) == 3:
            third.set()
        if len(calls) == 1:
            raise RuntimeError("the first round fails")

    context = every(5.0, step, "test work", clock)(app)
    await context.__anext__()
    await asyncio.wait_for(third.wait(), 5)
    with pytest.raises(StopAsyncIteration):
        await context.__anext__()
    stopped_at = len(calls)
    for _ in range(10):
        await asyncio.sleep(0)
    assert len(calls) == stopped_at, "no round after shutdown"
    assert all(given is app for given in calls)
    assert clock.slept[:3] == [5.0, 5.0, 5.0]
