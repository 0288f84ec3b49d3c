"""The one backoff: how long to wait after a failed attempt (`RetryPolicy.delay`, which the
consumer turns into a TTL-queue delay) and, for call sites that try again in place, the loop
that waits it (`retrying`).

Written here rather than taken from tenacity or backoff: the consumer needs the delay alone
(it republishes instead of looping), and both libraries read `time.monotonic` themselves for
their deadlines, so a test could not drive them with a fake clock. The formula is dramatiq's
`compute_backoff`: doubling from a base, capped, with a share of jitter."""

from __future__ import annotations

import random
import sys
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

from shared.clock import CLOCK, Clock

T = TypeVar("T")
# For a loop bounded by time (`within`) or by nothing: a dependency's outage is waited out.
FOREVER = sys.maxsize


@dataclass(frozen=True)
class RetryPolicy:
    """`max_attempts` counts the first try. `jitter` is the share of each delay drawn at
    random: 0.5 waits between half and all of it (retries of many messages spread out), 1.0
    anything up to it (racing writers part at once), 0 exactly it."""

    max_attempts: int = 5
    base_delay: float = 1.0
    max_delay: float = 300.0
    jitter: float = 0.5

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError(f"max_attempts must be at least 1, not {self.max_attempts}")
        if self.base_delay < 0 or self.max_delay < self.base_delay:
            raise ValueError(f"delays must satisfy 0 <= base_delay <= max_delay, not "
                             f"base_delay={self.base_delay}, max_delay={self.max_delay}")
        if not 0.0 <= self.jitter <= 1.0:
            raise ValueError(f"jitter must be between 0 and 1, not {self.jitter}")

    def delay(self, attempt: int, rng: random.Random | None = None) -> float:
        """Seconds to wait after failed attempt `attempt` (1-based)."""
        # min() before the power would overflow: a policy of FOREVER attempts gets there.
        ceiling = min(self.max_delay, self.base_delay * 2.0 ** min(attempt - 1, 1000))
        if not self.jitter:
            return ceiling
        share: float = (rng or random).random()
        return ceiling * (1.0 - self.jitter + self.jitter * share)


async def retrying(
    call: Callable[[int], Awaitable[T]],
    policy: RetryPolicy,
    retry_on: tuple[type[BaseException], ...],
    *,
    within: float | None = None,
    clock: Clock = CLOCK,
    rng: random.Random | None = None,
) -> T:
    """`call(attempt)` (1-based) until it returns. A failure in `retry_on` is tried again
    after `policy.delay(attempt)`, up to `policy.max_attempts` attempts and, with `within`,
    only while that wait ends within `within` seconds of the start; then the last failure
    is raised. Any other failure is raised at once."""
    deadline = None if within is None else clock.now() + within
    attempt = 1
    while True:
        try:
            return await call(attempt)
        except retry_on:
            pause = policy.delay(attempt, rng)
            if attempt >= policy.max_attempts or (
                    deadline is not None and clock.now() + pause > deadline):
                raise
        await clock.sleep(pause)
        attempt += 1
