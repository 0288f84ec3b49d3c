"""Moving-window rate limits per API key: no span of a limit's length holds more than its
number of accepted calls, wherever the span starts (a fixed clock window would let twice the
limit through across its boundary).

Each key has one document holding the times of its accepted calls within the longest window,
oldest first, and a version. A call reads it, decides (`judge`, pure), and writes the new list
back only if the version is still the one it read (compare-and-set): of two replicas that
read the same state, one wins and the other decides again on what the winner wrote, so the
last slot is never taken twice. One document for all of a key's limits makes a call accepted
by every limit or by none; refused calls are not recorded, so a client that keeps asking while
refused gets its slots back on time. The document expires (TTL index on `expires`) once its
newest call has left the longest window."""

from __future__ import annotations

import math
import time
from bisect import bisect_right, insort
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from pymongo.asynchronous.collection import AsyncCollection
from pymongo.errors import DuplicateKeyError

Clock = Callable[[], float]
# Each accepted call is stored, so a window holds at most this many (about 13 bytes each).
MAX_CALLS = 10_000
# Documents outlive their longest window by this much, so that a clock skew between replicas
# never drops calls that still count.
EXPIRY_MARGIN = timedelta(minutes=5)
# Compare-and-set attempts of one call. Each lost attempt means another call of the same key
# was accepted meanwhile; past this many the call is refused for a second (fail closed).
ROUNDS = 100


@dataclass(frozen=True)
class Limit:
    name: str
    calls: int
    seconds: int

    def __post_init__(self) -> None:
        if not 1 <= self.calls <= MAX_CALLS:
            raise ValueError(f"limit {self.name!r}: calls must be 1 to {MAX_CALLS}, "
                             f"not {self.calls}")
        if self.seconds < 1:
            raise ValueError(f"limit {self.name!r}: seconds must be at least 1, "
                             f"not {self.seconds}")


@dataclass(frozen=True)
class Verdict:
    """`remaining`: calls still allowed now by the tightest limit; `reset_in`: whole seconds
    until that limit's oldest counted call leaves its window (a slot frees; at least 1)."""

    allowed: bool
    limit: Limit
    remaining: int
    reset_in: int

    def headers(self, policy: str) -> dict[str, str]:
        headers = {
            "RateLimit-Policy": policy,
            "RateLimit-Limit": str(self.limit.calls),
            "RateLimit-Remaining": str(self.remaining),
            "RateLimit-Reset": str(self.reset_in),
        }
        if not self.allowed:
            headers["Retry-After"] = str(self.reset_in)
        return headers


@dataclass(frozen=True)
class Window:
    """A key's accepted calls (unix seconds, oldest first) as read at `version` (0: none)."""

    calls: tuple[float, ...] = ()
    version: int = 0


def _seconds_until(moment: float, now: float) -> int:
    return max(1, math.ceil(moment - now))


def judge(limits: Sequence[Limit], calls: Sequence[float], now: float
          ) -> tuple[Verdict, tuple[float, ...] | None]:
    """The verdict on a call at `now` given the accepted `calls` (sorted), and the calls to
    store if it is accepted (those still inside the longest window, plus this one). A call
    counts against a limit while `now - call < seconds`: a slot frees exactly `seconds` after
    its call."""
    longest = max(limit.seconds for limit in limits)
    kept = list(calls[bisect_right(calls, now - longest):])
    refusals: list[tuple[int, Limit]] = []
    allowed: list[Verdict] = []
    for limit in limits:
        first = bisect_right(kept, now - limit.seconds)
        count = len(kept) - first
        if count >= limit.calls:
            refusals.append((_seconds_until(kept[first] + limit.seconds, now), limit))
            continue
        oldest = min(kept[first], now) if count else now  # another replica's clock may lead
        allowed.append(Verdict(True, limit, limit.calls - count - 1,
                               _seconds_until(oldest + limit.seconds, now)))
    if refusals:
        # The call passes only once every exceeded limit has a slot: tell the longest wait.
        wait, limit = max(refusals, key=lambda refusal: refusal[0])
        return Verdict(False, limit, 0, wait), None
    insort(kept, now)
    return min(allowed, key=lambda verdict: verdict.remaining), tuple(kept)


class Windows(Protocol):
    """Where windows live: every replica must see the same ones."""

    async def load(self, key: str) -> Window: ...

    async def save(self, key: str, read: Window, calls: tuple[float, ...],
                   expires: datetime) -> bool:
        """Store `calls` if the key's window is still at `read.version`; False if not."""
        ...


class MongoWindows:
    """Windows as documents `{_id: key, calls, version, expires}`."""

    def __init__(self, collection: AsyncCollection[dict[str, Any]]) -> None:
        self.collection = collection

    async def load(self, key: str) -> Window:
        found = await self.collection.find_one({"_id": key})
        if found is None:
            return Window()
        return Window(tuple(float(call) for call in found["calls"]), int(found["version"]))

    async def save(self, key: str, read: Window, calls: tuple[float, ...],
                   expires: datetime) -> bool:
        document = {"calls": list(calls), "version": read.version + 1, "expires": expires}
        if read.version == 0:
            try:
                await self.collection.insert_one({"_id": key, **document})
            except DuplicateKeyError:  # another replica created it first
                return False
            return True
        # A whole-document replace rather than `$set`: nx-27017 stores a datetime given to
        # `$set` as a string; a replacement keeps it a date on both servers, for the TTL.
        replaced = await self.collection.replace_one(
            {"_id": key, "version": read.version}, document)
        return replaced.matched_count == 1


class RateLimiter:
    def __init__(self, windows: Windows, scope: str, limits: Sequence[Limit],
                 clock: Clock = time.time) -> None:
        if not limits:
            raise ValueError("a rate limiter needs at least one limit")
        if len({limit.name for limit in limits}) != len(limits):
            raise ValueError(f"limit names must differ: {[limit.name for limit in limits]}")
        self.windows = windows
        self.scope = scope
        self.limits = tuple(limits)
        self.clock = clock
        self.longest = max(limit.seconds for limit in limits)

    @property
    def policy(self) -> str:
        return ", ".join(f"{limit.calls};w={limit.seconds}" for limit in self.limits)

    async def hit(self, key: str) -> Verdict:
        """Record a call of `key` if every limit allows it; a refused call is not recorded."""
        window_id = f"{self.scope}:{key}"
        for _ in range(ROUNDS):
            read = await self.windows.load(window_id)
            now = self.clock()
            verdict, calls = judge(self.limits, read.calls, now)
            if calls is None:
                return verdict
            expires = datetime.fromtimestamp(calls[-1] + self.longest, UTC) + EXPIRY_MARGIN
            if await self.windows.save(window_id, read, calls, expires):
                return verdict
        return Verdict(False, verdict.limit, 0, 1)
