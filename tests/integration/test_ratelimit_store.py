"""The moving-window limiter on the real store: replicas racing for the last slots, the
window kept across calls, and stale windows expiring."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from datetime import datetime

import pytest

from shared.ratelimit import Limit, MongoWindows, RateLimiter
from shared.settings import Settings
from shared.store import Store, open_store
from tests.integration.test_store import index_on

LIMITS = [Limit("minute", 20, 60), Limit("day", 1000, 86_400)]


@pytest.fixture
async def stores(settings: Settings) -> AsyncIterator[list[Store]]:
    """Two clients of one database: what two logger replicas hold."""
    async with AsyncExitStack() as stack:
        yield [await stack.enter_async_context(open_store(settings, f"replica-{n}"))
               for n in range(2)]


async def test_two_replicas_hit_at_once_let_exactly_twenty_through(stores: list[Store]) -> None:
    replicas = [RateLimiter(MongoWindows(store.rate_limits), "logs", LIMITS) for store in stores]
    verdicts = await asyncio.gather(*(replicas[n % 2].hit("key") for n in range(40)))
    assert sum(verdict.allowed for verdict in verdicts) == 20
    assert sorted(v.remaining for v in verdicts if v.allowed) == list(range(20))
    window = await stores[0].rate_limits.find_one({"_id": "logs:key"})
    assert window is not None
    assert (len(window["calls"]), window["version"]) == (20, 20)
    assert window["calls"] == sorted(window["calls"])


async def test_the_window_moves_on_the_stored_calls(stores: list[Store]) -> None:
    now = [time.time() - 40]

    def clock() -> float:
        return now[0]

    replicas = [RateLimiter(MongoWindows(store.rate_limits), "logs", LIMITS, clock)
                for store in stores]
    allowed = 0
    for n in range(40):  # 40 calls in 20 s, whatever clock minute they straddle
        allowed += (await replicas[n % 2].hit("key")).allowed
        now[0] += 0.5
    assert allowed == 20
    first = (await stores[0].rate_limits.find_one({"_id": "logs:key"}) or {})["calls"][0]
    now[0] = first + 59.9
    refused = await replicas[0].hit("key")
    assert (refused.allowed, refused.reset_in) == (False, 1)
    now[0] = first + 60
    assert (await replicas[1].hit("key")).allowed


async def test_window_documents_carry_a_ttl_date_and_stale_ones_expire(
    stores: list[Store]
) -> None:
    rate_limits = stores[0].rate_limits
    await RateLimiter(MongoWindows(rate_limits), "logs", LIMITS).hit("fresh")
    fresh = await rate_limits.find_one({"_id": "logs:fresh"})
    assert fresh is not None
    assert isinstance(fresh["expires"], datetime)  # a string would never expire
    assert index_on(await rate_limits.index_information(), "expires")["expireAfterSeconds"] == 0
    # Calls two days old: their document's expiry is already past.
    await RateLimiter(MongoWindows(rate_limits), "logs", LIMITS,
                      lambda: time.time() - 2 * 86_400).hit("stale")
    # MongoDB's TTL monitor runs every 60 s; the stand-in hides expired documents at once.
    deadline = time.monotonic() + 75
    while await rate_limits.find_one({"_id": "logs:stale"}) is not None:
        assert time.monotonic() < deadline, "the stale window never expired"
        await asyncio.sleep(0.5)
    assert await rate_limits.find_one({"_id": "logs:fresh"}) is not None
