"""`every`: background work repeated for an app's lifetime, surviving failed rounds."""

from __future__ import annotations

import asyncio

import pytest
from aiohttp import web

from shared.periodic import every


async def test_runs_again_after_a_failure_and_stops_with_the_app() -> None:
    calls: list[int] = []
    third = asyncio.Event()

    async def step(app: web.Application) -> None:
        calls.append(len(calls))
        if len(calls) == 3:
            third.set()
        if len(calls) == 1:
            raise RuntimeError("the first round fails")

    context = every(0.01, step, "test work")(web.Application())
    await context.__anext__()
    await asyncio.wait_for(third.wait(), 5)
    with pytest.raises(StopAsyncIteration):
        await context.__anext__()
    stopped_at = len(calls)
    await asyncio.sleep(0.05)
    assert len(calls) == stopped_at, "no round after shutdown"
