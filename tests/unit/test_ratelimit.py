"""The moving-window limiter, on an in-memory window store and a clock set by hand."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from pydantic import ValidationError

from shared.ratelimit import (
    EXPIRY_MARGIN,
    MAX_CALLS,
    ROUNDS,
    Limit,
    RateLimiter,
    Verdict,
    Window,
)
from shared.settings import Settings

MINUTE = Limit("minute", 20, 60)
DAY = Limit("day", 1000, 86_400)


class Clock:
    def __init__(self, now: float = 1_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


class MemoryWindows:
    """The compare-and-set of `MongoWindows`, in a dict. `meddle`, if set, runs before a
    save compares: another replica's write landing between this call's read and write."""

    def __init__(self) -> None:
        self.stored: dict[str, tuple[Window, datetime]] = {}
        self.meddle: list[str] = []
        self.saves = 0

    async def load(self, key: str) -> Window:
        return self.stored[key][0] if key in self.stored else Window()

    async def save(self, key: str, read: Window, calls: tuple[float, ...],
                   expires: datetime) -> bool:
        self.saves += 1
        if self.meddle:
            meddler = self.meddle.pop()
            current = await self.load(key)
            self.stored[key] = (Window((*current.calls, float(meddler)), current.version + 1),
                                expires)
        if (await self.load(key)).version != read.version:
            return False
        self.stored[key] = (Window(calls, read.version + 1), expires)
        return True


def limiter(*limits: Limit, clock: Clock | None = None) -> tuple[RateLimiter, MemoryWindows]:
    windows = MemoryWindows()
    return RateLimiter(windows, "logs", limits or (MINUTE, DAY), clock or Clock()), windows


async def test_twenty_calls_then_refusal() -> None:
    clock = Clock()
    rate, _ = limiter(clock=clock)
    remaining = []
    for _ in range(20):
        verdict = await rate.hit("k")
        assert verdict.allowed
        remaining.append(verdict.remaining)
        clock.now += 0.5
    refused = await rate.hit("k")
    assert remaining == list(range(19, -1, -1))
    assert (refused.allowed, refused.limit, refused.remaining) == (False, MINUTE, 0)
    assert (await rate.hit("other key")).allowed


async def test_forty_calls_across_a_minute_boundary_let_only_twenty_through() -> None:
    # 40 calls from 20 s before a clock minute's end to 20 s after it (a fixed window let
    # all 40 through).
    clock = Clock(60 * 1000 - 10)
    rate, _ = limiter(clock=clock)
    allowed = 0
    for _ in range(40):
        allowed += (await rate.hit("k")).allowed
        clock.now += 0.5
    assert allowed == 20


async def test_a_slot_frees_exactly_sixty_seconds_after_the_oldest_call() -> None:
    clock = Clock(500.0)
    rate, _ = limiter(clock=clock)
    await rate.hit("k")
    clock.now = 530.0
    for _ in range(19):
        assert (await rate.hit("k")).allowed
    clock.now = 559.999
    assert not (await rate.hit("k")).allowed
    clock.now = 560.0
    assert (await rate.hit("k")).allowed  # the call of 500.0 left; the 19 of 530.0 remain
    assert not (await rate.hit("k")).allowed


async def test_retry_after_is_the_wait_for_the_oldest_call_to_leave() -> None:
    clock = Clock(100.25)
    rate, _ = limiter(clock=clock)
    for _ in range(20):
        await rate.hit("k")
        clock.now += 1
    # Oldest at 100.25: it leaves at 160.25.
    clock.now = 130.0
    assert (await rate.hit("k")).headers(rate.policy)["Retry-After"] == "31"  # 30.25 s
    clock.now = 160.2
    assert (await rate.hit("k")).reset_in == 1  # 0.05 s: never 0
    clock.now = 160.25
    assert (await rate.hit("k")).allowed


async def test_reset_while_allowed_is_when_the_tightest_limits_oldest_call_leaves() -> None:
    clock = Clock(0.0)
    rate, _ = limiter(clock=clock)
    assert (await rate.hit("k")).reset_in == 60  # its own call is the oldest
    clock.now = 45.5
    verdict = await rate.hit("k")
    assert (verdict.limit, verdict.remaining, verdict.reset_in) == (MINUTE, 18, 15)


async def test_the_day_limit_holds_over_24_hours() -> None:
    clock = Clock(0.0)
    rate, _ = limiter(clock=clock)
    for _ in range(1000):  # one every 61 s: the minute limit never binds
        assert (await rate.hit("k")).allowed
        clock.now += 61
    refused = await rate.hit("k")
    assert (refused.allowed, refused.limit) == (False, DAY)
    assert refused.reset_in == 86_400 - 61_000
    clock.now = 86_400.0
    assert (await rate.hit("k")).allowed  # the call of 0.0 left the day
    assert not (await rate.hit("k")).allowed


async def test_refused_calls_are_not_counted() -> None:
    clock = Clock(0.0)
    rate, windows = limiter(clock=clock)
    for _ in range(20):
        await rate.hit("k")
    saved = windows.saves
    for _ in range(100):  # a client that keeps asking while refused
        clock.now += 0.5
        assert not (await rate.hit("k")).allowed
    assert windows.saves == saved
    clock.now = 60.0
    assert (await rate.hit("k")).allowed


async def test_a_call_refused_by_one_limit_takes_no_slot_of_another() -> None:
    clock = Clock(0.0)
    rate, windows = limiter(Limit("minute", 2, 60), Limit("day", 3, 86_400), clock=clock)
    assert [(await rate.hit("k")).allowed for _ in range(3)] == [True, True, False]
    clock.now = 60.0
    assert [(await rate.hit("k")).allowed for _ in range(2)] == [True, False]
    assert windows.stored["logs:k"][0].calls == (0.0, 0.0, 60.0)


async def test_both_limits_exceeded_tell_the_longer_wait() -> None:
    clock = Clock(0.0)
    rate, _ = limiter(Limit("minute", 2, 60), Limit("day", 2, 86_400), clock=clock)
    await rate.hit("k")
    await rate.hit("k")
    clock.now = 10.0
    refused = await rate.hit("k")
    assert (refused.limit.name, refused.reset_in) == ("day", 86_390)


async def test_calls_outside_the_longest_window_are_pruned_and_the_document_expires() -> None:
    clock = Clock(0.0)
    rate, windows = limiter(clock=clock)
    await rate.hit("k")
    clock.now = 86_400.0 + 5
    await rate.hit("k")
    window, expires = windows.stored["logs:k"]
    assert window.calls == (86_405.0,)
    assert expires == datetime.fromtimestamp(86_405.0 + 86_400, UTC) + EXPIRY_MARGIN


async def test_a_lost_compare_and_set_decides_again_on_the_winners_write() -> None:
    clock = Clock(0.0)
    rate, windows = limiter(Limit("minute", 2, 60), clock=clock)
    await rate.hit("k")
    windows.meddle = ["0"]  # another replica takes the last slot after our read
    refused = await rate.hit("k")
    assert not refused.allowed
    assert windows.stored["logs:k"][0].calls == (0.0, 0.0)


async def test_a_call_that_keeps_losing_is_refused_for_a_second() -> None:
    clock = Clock(0.0)
    rate, windows = limiter(Limit("minute", MAX_CALLS, 60), clock=clock)
    windows.meddle = ["0"] * ROUNDS
    refused = await rate.hit("k")
    assert (refused.allowed, refused.reset_in) == (False, 1)
    assert len(windows.stored["logs:k"][0].calls) == ROUNDS  # only the other replica's


async def test_calls_stamped_by_a_replica_whose_clock_leads_still_count() -> None:
    clock = Clock(100.0)
    rate, windows = limiter(Limit("minute", 2, 60), clock=clock)
    windows.stored["logs:k"] = (Window((103.0,), 1), datetime.now(UTC))
    allowed = await rate.hit("k")
    assert (allowed.allowed, allowed.remaining, allowed.reset_in) == (True, 0, 60)
    assert windows.stored["logs:k"][0].calls == (100.0, 103.0)


def test_policy_names_each_window() -> None:
    rate, _ = limiter()
    assert rate.policy == "20;w=60, 1000;w=86400"


@pytest.mark.parametrize(
    ("calls", "seconds", "message"),
    [(0, 60, "calls must be 1 to 10000, not 0"),
     (MAX_CALLS + 1, 60, "calls must be 1 to 10000, not 10001"),
     (20, 0, "seconds must be at least 1, not 0")],
)
def test_bad_limits_are_refused(calls: int, seconds: int, message: str) -> None:
    with pytest.raises(ValueError, match=f"limit 'minute': {message}"):
        Limit("minute", calls, seconds)


def test_a_limiter_needs_distinct_limits() -> None:
    with pytest.raises(ValueError, match="at least one limit"):
        RateLimiter(MemoryWindows(), "logs", [])
    with pytest.raises(ValueError, match="names must differ"):
        RateLimiter(MemoryWindows(), "logs", [MINUTE, Limit("minute", 5, 10)])


@pytest.mark.parametrize("field", ["log_rate_per_minute", "log_rate_per_day"])
@pytest.mark.parametrize("value", [0, MAX_CALLS + 1])
def test_settings_bound_the_limits_to_what_a_window_stores(field: str, value: int) -> None:
    bad: dict[str, Any] = {field: value}
    with pytest.raises(ValidationError, match=field):
        Settings(_env_file=None, **bad)
    good: dict[str, Any] = {field: MAX_CALLS}
    assert getattr(Settings(_env_file=None, **good), field) == MAX_CALLS


def test_verdict_headers() -> None:
    refused = Verdict(False, MINUTE, 0, 12)
    assert refused.headers("20;w=60") == {
        "RateLimit-Policy": "20;w=60", "RateLimit-Limit": "20", "RateLimit-Remaining": "0",
        "RateLimit-Reset": "12", "Retry-After": "12"}
    assert "Retry-After" not in Verdict(True, Limit("day", 5, 86400), 3, 100).headers("p")
