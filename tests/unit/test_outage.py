"""Waiting out a dependency: one prober at a time, every waiter let go by one answer."""

from __future__ import annotations

import asyncio

from shared.outage import Outage
from tests.fakeclock import FakeClock


async def test_waiters_share_one_prober_and_all_go_when_it_answers() -> None:
    calls = 0

    async def probe() -> None:
        nonlocal calls
        calls += 1
        if calls < 4:
            raise ConnectionError("still down")

    clock = FakeClock()
    outage = Outage("store", probe, (ConnectionError,), max_pause=0.5, first_pause=0.2,
                    clock=clock)
    found_down = await asyncio.wait_for(asyncio.gather(
        *(outage.wait_until_up(ConnectionError("down")) for _ in range(5))), 5)
    assert calls == 4  # the waiters behind the first did not probe again
    assert found_down == [True] * 5
    assert clock.slept == [0.2, 0.4, 0.5, 0.5]  # doubling pauses, capped


async def test_a_store_that_answers_at_once_was_not_down() -> None:
    """The caller then counts the failure against the message (a poison message must not
    loop forever on a store that is up)."""

    async def probe() -> None:
        return None

    clock = FakeClock()
    outage = Outage("store", probe, (ConnectionError,), clock=clock)
    assert await asyncio.wait_for(outage.wait_until_up(ConnectionError("reset")), 5) is False
    assert clock.slept == [0.2]


async def test_a_new_outage_after_recovery_is_probed_again() -> None:
    answers = [False, True, False, True]

    async def probe() -> None:
        if not answers.pop(0):
            raise ConnectionError("down")

    clock = FakeClock()
    outage = Outage("store", probe, (ConnectionError,), clock=clock)
    assert await asyncio.wait_for(outage.wait_until_up(ConnectionError("down")), 5) is True
    assert await asyncio.wait_for(
        outage.wait_until_up(ConnectionError("down again")), 5) is True
    assert answers == []
    assert clock.slept == [0.2, 0.4, 0.2, 0.4]  # each outage starts from the first pause
