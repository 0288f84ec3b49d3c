"""`retrying` and `RetryPolicy`: the one backoff, driven by a fake clock (no real sleeps)."""

from __future__ import annotations

import random
from collections.abc import Awaitable, Callable

import pytest

from shared.retry import FOREVER, RetryPolicy, retrying
from tests.fakeclock import FakeClock

EXACT = RetryPolicy(max_attempts=4, base_delay=1.0, max_delay=4.0, jitter=0.0)


class Flaky(Exception):
    pass


def failing(times: int, error: type[Exception] = Flaky,
            ) -> tuple[list[int], Callable[[int], Awaitable[int]]]:
    """A call that fails its first `times` attempts, then returns its attempt number."""
    seen: list[int] = []

    async def call(attempt: int) -> int:
        seen.append(attempt)
        if len(seen) <= times:
            raise error(f"attempt {attempt}")
        return attempt

    return seen, call


async def test_retries_after_doubling_waits_and_returns_the_answer() -> None:
    clock = FakeClock()
    seen, call = failing(3)
    assert await retrying(call, EXACT, (Flaky,), clock=clock) == 4
    assert seen == [1, 2, 3, 4]
    assert clock.slept == [1.0, 2.0, 4.0]


async def test_the_last_failure_is_raised_after_max_attempts() -> None:
    clock = FakeClock()
    seen, call = failing(10)
    with pytest.raises(Flaky, match="attempt 4"):
        await retrying(call, EXACT, (Flaky,), clock=clock)
    assert seen == [1, 2, 3, 4]
    assert clock.slept == [1.0, 2.0, 4.0], "no wait after the last attempt"


async def test_other_failures_are_raised_at_once() -> None:
    clock = FakeClock()
    seen, call = failing(1, ValueError)
    with pytest.raises(ValueError, match="attempt 1"):
        await retrying(call, EXACT, (Flaky,), clock=clock)
    assert seen == [1]
    assert clock.slept == []


async def test_within_gives_up_rather_than_wait_past_its_deadline() -> None:
    clock = FakeClock()
    policy = RetryPolicy(max_attempts=FOREVER, base_delay=0.2, max_delay=2.0, jitter=0.0)
    seen, call = failing(100)
    with pytest.raises(Flaky):
        await retrying(call, policy, (Flaky,), within=5.0, clock=clock)
    assert clock.slept == pytest.approx([0.2, 0.4, 0.8, 1.6, 2.0])
    assert sum(clock.slept) <= 5.0
    assert len(seen) == 6


def test_backoff_doubles_with_jitter_and_is_capped() -> None:
    policy = RetryPolicy(max_attempts=10, base_delay=1.0, max_delay=30.0)
    rng = random.Random(7)
    for attempt, ceiling in [(1, 1.0), (2, 2.0), (3, 4.0), (5, 16.0), (6, 30.0), (9, 30.0)]:
        delays = [policy.delay(attempt, rng) for _ in range(200)]
        assert all(ceiling / 2 <= delay <= ceiling for delay in delays)
        assert max(delays) - min(delays) > ceiling / 10  # jitter spreads retries out


def test_full_jitter_spreads_over_the_whole_delay_and_none_is_exact() -> None:
    rng = random.Random(3)
    full = RetryPolicy(max_attempts=8, base_delay=0.005, max_delay=0.32, jitter=1.0)
    delays = [full.delay(7, rng) for _ in range(500)]
    assert 0.0 <= min(delays) < 0.05
    assert 0.27 < max(delays) <= 0.32
    assert [EXACT.delay(n) for n in range(1, 6)] == [1.0, 2.0, 4.0, 4.0, 4.0]


def test_forever_never_overflows() -> None:
    policy = RetryPolicy(max_attempts=FOREVER, base_delay=0.5, max_delay=5.0)
    assert 2.5 <= policy.delay(10**9) <= 5.0


@pytest.mark.parametrize(("fields", "named"), [
    ({"max_attempts": 0}, "max_attempts"),
    ({"base_delay": -1.0}, "base_delay"),
    ({"base_delay": 10.0, "max_delay": 1.0}, "max_delay"),
    ({"jitter": 1.5}, "jitter"),
    ({"jitter": -0.1}, "jitter"),
])
def test_bad_policies_are_refused_naming_the_field(fields: dict[str, float],
                                                   named: str) -> None:
    with pytest.raises(ValueError, match=named):
        RetryPolicy(**fields)  # type: ignore[arg-type]
