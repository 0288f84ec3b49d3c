"""Fixed-window rate limits per API key, with counters in MongoDB so that every replica of a
service shares them. A counter document per key and window expires by a TTL index."""

from __future__ import annotations

import asyncio
import math
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from pymongo import ReturnDocument
from pymongo.errors import DuplicateKeyError

from shared.store import Store

# Counters outlive their window by this much, so that a clock skew between replicas never
# resets a window early.
EXPIRY_MARGIN = timedelta(minutes=5)


@dataclass(frozen=True)
class Limit:
    name: str
    calls: int
    seconds: int

    def window(self, now: float) -> int:
        return int(now // self.seconds)

    def reset_in(self, now: float) -> int:
        """Whole seconds until the current window ends (at least 1)."""
        return max(1, math.ceil((self.window(now) + 1) * self.seconds - now))


@dataclass(frozen=True)
class Verdict:
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


class RateLimiter:
    """Counts a call against each limit in turn; the first exceeded limit refuses it (and
    the later ones are not charged)."""

    def __init__(self, store: Store, scope: str, limits: list[Limit]) -> None:
        self.store = store
        self.scope = scope
        self.limits = limits

    @property
    def policy(self) -> str:
        return ", ".join(f"{limit.calls};w={limit.seconds}" for limit in self.limits)

    async def _count(self, key: str, limit: Limit, now: float) -> int:
        counter_id = f"{self.scope}:{key}:{limit.name}:{limit.window(now)}"
        counters = self.store.rate_limits
        for _ in range(3):
            # Increment first (one round trip once the window's counter exists); create it
            # on the first call of a window. Both forms are correct on every MongoDB-protocol
            # server, unlike an upsert with $setOnInsert on some stand-ins.
            updated = await counters.find_one_and_update(
                {"_id": counter_id}, {"$inc": {"count": 1}}, return_document=ReturnDocument.AFTER
            )
            if updated is not None:
                return int(updated["count"])
            expires = datetime.fromtimestamp((limit.window(now) + 1) * limit.seconds, UTC)
            try:
                await counters.insert_one(
                    {"_id": counter_id, "count": 1, "expires": expires + EXPIRY_MARGIN}
                )
                return 1
            except DuplicateKeyError:
                await asyncio.sleep(0)  # another replica created it: increment it
        raise RuntimeError(f"could not count {counter_id}")

    async def hit(self, key: str) -> Verdict:
        now = time.time()
        verdict: Verdict | None = None
        for limit in self.limits:
            count = await self._count(key, limit, now)
            current = Verdict(count <= limit.calls, limit, max(0, limit.calls - count),
                              limit.reset_in(now))
            if not current.allowed:
                return current
            if verdict is None or current.remaining < verdict.remaining:
                verdict = current
        assert verdict is not None
        return verdict
