"""A tool's ffmpeg dies with its worker, even one killed outright."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path

import psutil

RUN_FFMPEG = """
import asyncio
from shared.media import run_ffmpeg
asyncio.run(run_ffmpeg(["-re", "-f", "lavfi", "-i", "testsrc=duration=60:size=64x64:rate=5",
                        "-f", "null", "-"]))
"""


async def test_ffmpeg_dies_with_a_worker_killed_outright(tmp_path: Path) -> None:
    parent = await asyncio.create_subprocess_exec(
        sys.executable, "-c", RUN_FFMPEG, cwd=os.getcwd(),
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL)
    try:
        deadline = asyncio.get_running_loop().time() + 20
        while not (children := psutil.Process(parent.pid).children()):
            assert asyncio.get_running_loop().time() < deadline, "ffmpeg never started"
            await asyncio.sleep(0.1)
        ffmpeg = children[0]
        assert "ffmpeg" in ffmpeg.name()
        parent.send_signal(signal.SIGKILL)
        await parent.wait()
        gone, _ = await asyncio.to_thread(psutil.wait_procs, [ffmpeg], 3)
        assert gone, f"ffmpeg {ffmpeg.pid} outlived its worker"
    finally:
        if parent.returncode is None:
            parent.kill()
            await parent.wait()
