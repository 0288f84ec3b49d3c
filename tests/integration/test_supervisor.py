"""`conveyor dev`'s supervisor on real child processes: a child that keeps exiting is started
again after a doubling, capped delay; one that ran a while first is restarted quickly again;
a stopped supervisor starts nothing."""

from __future__ import annotations

import asyncio
import io
import re
import sys
from pathlib import Path

from services.dev.processes import ChildSpec, Slot
from services.dev.supervisor import Supervisor
from shared.retry import RetryPolicy

BACKOFF = RetryPolicy(max_attempts=1, base_delay=0.1, max_delay=0.4)
DELAY = re.compile(r"restarting it in ([0-9.]+)s")


async def delays_of(child_code: str, tmp_path: Path, restarts: int) -> list[float]:
    """The restart delays the supervisor printed for a child running `child_code`."""
    out = io.StringIO()
    supervisor = Supervisor(out=out, backoff=BACKOFF, steady_seconds=0.3)
    spec = ChildSpec("flaky", [sys.executable, "-c", child_code],
                     log_path=tmp_path / "flaky.log")
    slot = await Slot.start(spec)
    supervisor.watch(slot)
    deadline = asyncio.get_running_loop().time() + 30
    try:
        while out.getvalue().count("flaky restarted (pid") < restarts:
            assert asyncio.get_running_loop().time() < deadline, out.getvalue()
            await asyncio.sleep(0.05)
    finally:
        await supervisor.stop()
        await slot.child.stop()
    assert "flaky exited with code 3" in out.getvalue()
    return [float(found) for found in DELAY.findall(out.getvalue())][:restarts]


async def test_a_child_that_keeps_exiting_is_restarted_with_capped_backoff(
    tmp_path: Path,
) -> None:
    delays = await delays_of("import sys; sys.exit(3)", tmp_path, restarts=5)
    ceilings = [0.1, 0.2, 0.4, 0.4, 0.4]  # doubling, then capped
    for delay, ceiling in zip(delays, ceilings, strict=True):
        assert ceiling / 2 - 0.01 <= delay <= ceiling + 0.01, delays


async def test_a_child_that_ran_a_while_is_restarted_quickly_again(tmp_path: Path) -> None:
    # Each run outlasts steady_seconds, so the backoff starts over every time.
    delays = await delays_of("import sys, time; time.sleep(0.4); sys.exit(3)", tmp_path, 4)
    assert all(delay <= 0.11 for delay in delays), delays


async def test_a_stopped_supervisor_restarts_nothing(tmp_path: Path) -> None:
    out = io.StringIO()
    supervisor = Supervisor(out=out, backoff=BACKOFF)
    slot = await Slot.start(ChildSpec("sleeper", [sys.executable, "-c",
                                                  "import time; time.sleep(60)"],
                                      log_path=tmp_path / "sleeper.log"))
    supervisor.watch(slot)
    first = slot.child
    await supervisor.stop()
    assert await first.stop() != 0  # stopped on purpose (SIGTERM)
    # Longer than the longest backoff and a start: a watcher left running would restart it.
    quiet_until = asyncio.get_running_loop().time() + 1.5
    while asyncio.get_running_loop().time() < quiet_until:
        assert slot.child is first
        assert out.getvalue() == ""
        await asyncio.sleep(0.05)
