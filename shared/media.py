"""ffmpeg as a subprocess (the worker's event loop stays free, and a stop can kill it), with
progress from its `-progress` output and the CPU time it used; probing with FFmpeg's own
libraries (PyAV), since the pip-installed ffmpeg comes without ffprobe."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import subprocess
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from fractions import Fraction
from functools import cache
from pathlib import Path
from typing import Any

import av

from shared.errors import PermanentError
from shared.lifetime import die_with_parent
from shared.numbers import whole_number

Progress = Callable[[float], Awaitable[None]]
STDERR_TAIL = 2000


class MediaError(PermanentError):
    """The input is not media ffmpeg can read, or ffmpeg refused the job."""


@cache
def ffmpeg_path() -> str:
    """The system's ffmpeg when there is one, else the static build of imageio-ffmpeg."""
    found = shutil.which("ffmpeg")
    if found:
        return found
    import imageio_ffmpeg  # type: ignore[import-untyped]

    return str(imageio_ffmpeg.get_ffmpeg_exe())


@dataclass
class Run:
    cpu_seconds: float = 0.0


async def run_ffmpeg(
    args: Sequence[str], *, duration: float | None = None, progress: Progress | None = None,
) -> Run:
    """Run ffmpeg with `args` (inputs, filters, outputs); report the share of `duration`
    done; return the CPU time it used. Cancelling kills the process.

    The process is reaped here with `wait4`, which gives its exact resource usage (CPU
    time), however short it ran; pipes are read in threads so the event loop stays free."""
    loop = asyncio.get_running_loop()
    # Popen, not asyncio: only a process reaped here with wait4 reports its CPU time.
    process = subprocess.Popen(  # noqa: ASYNC220
        [ffmpeg_path(), "-hide_banner", "-nostdin", "-y", "-nostats", "-progress", "pipe:1",
         *args],
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        # A worker killed outright takes its ffmpeg with it, instead of leaving it to run on.
        preexec_fn=die_with_parent(),
    )
    updates: asyncio.Queue[float | None] = asyncio.Queue()

    def pump_progress() -> None:
        assert process.stdout is not None
        for raw in process.stdout:
            key, _, value = raw.decode(errors="replace").strip().partition("=")
            micros = whole_number(value) if key == "out_time_us" else None
            if micros is not None and duration:
                percent = min(100.0, 100.0 * micros / 1e6 / duration)
                loop.call_soon_threadsafe(updates.put_nowait, percent)
        loop.call_soon_threadsafe(updates.put_nowait, None)

    def read_errors() -> bytes:
        assert process.stderr is not None
        return process.stderr.read()

    def reap() -> tuple[int, float]:
        _, status, usage = os.wait4(process.pid, 0)
        process.returncode = os.waitstatus_to_exitcode(status)  # Popen must not wait again
        return process.returncode, usage.ru_utime + usage.ru_stime

    async def report() -> None:
        while (percent := await updates.get()) is not None:
            if progress is not None:
                await progress(percent)

    threads = asyncio.gather(asyncio.to_thread(read_errors), asyncio.to_thread(reap),
                             asyncio.to_thread(pump_progress), report())
    try:
        stderr, (code, cpu), _, _ = await asyncio.shield(threads)
    except asyncio.CancelledError:
        with contextlib.suppress(ProcessLookupError):
            process.kill()
        with contextlib.suppress(Exception):
            await threads
        raise
    finally:
        for pipe in (process.stdout, process.stderr):
            if pipe is not None:
                pipe.close()
    if code != 0:
        tail = stderr.decode(errors="replace").strip().splitlines()
        raise MediaError("ffmpeg failed: " + " / ".join(tail[-3:])[-STDERR_TAIL:])
    return Run(cpu_seconds=cpu)


def _rate(value: Fraction | None) -> float | None:
    return round(float(value), 3) if value else None


def probe_file(path: Path) -> dict[str, Any]:
    """Container, duration and streams of a media file; `MediaError` if it is not one."""
    try:
        with av.open(str(path)) as container:
            streams = []
            for stream in container.streams:
                context: Any = stream.codec_context
                raw: Any = stream
                entry: dict[str, Any] = {
                    "index": stream.index, "type": stream.type,
                    "codec": context.name if context else None,
                    "bit_rate": getattr(raw, "bit_rate", None) or (
                        context.bit_rate if context else None),
                }
                if stream.type == "video":
                    entry.update(width=context.width, height=context.height,
                                 frame_rate=_rate(raw.average_rate or raw.guessed_rate))
                elif stream.type == "audio":
                    entry.update(channels=context.channels, sample_rate=context.sample_rate)
                streams.append(entry)
            duration = container.duration / 1e6 if container.duration else None
            return {
                "container": container.format.name, "duration": duration,
                "bit_rate": container.bit_rate or None, "size": path.stat().st_size,
                "streams": streams,
            }
    except (av.error.FFmpegError, OSError, ValueError) as exc:
        raise MediaError(f"{path.name} is not media that can be read: {exc}") from None


def media_seconds(info: dict[str, Any]) -> float:
    return float(info.get("duration") or 0.0)


def has_stream(info: dict[str, Any], kind: str) -> bool:
    return any(stream["type"] == kind for stream in info["streams"])
