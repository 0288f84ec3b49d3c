"""`storage_transfer`: an object through `storage:get` + `storage:put` against the bare minio
client doing the same download and upload; and `transcode`: a 1080p to 360p
`media:transcode` through the platform against the same ffmpeg command run directly."""

from __future__ import annotations

import asyncio
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

import psutil

from bench.common import row
from bench.dispatch import conveyor_platform, wait_for
from services.dev.processes import ChildProcess
from services.worker.tools.media import rendition_args
from shared.media import run_ffmpeg
from shared.messages import JobSubmitted
from shared.objects import open_objects
from shared.settings import Settings
from shared.toolspecs import Rendition
from shared.topology import JOBS_EXCHANGE

MB = 1024 * 1024


def big_file(path: Path, size: int) -> None:
    block = os.urandom(MB)
    with path.open("wb") as handle:
        for index in range(size // MB):
            handle.write(block[:-4] + index.to_bytes(4, "big"))


async def run_job(settings: Settings, tasks: list[dict[str, Any]],
                  watch: Callable[[list[ChildProcess]], Coroutine[Any, Any, None]] | None = None,
                  ) -> dict[str, Any]:
    """Run one produced job on a fresh platform; the job document when it ends."""
    async with conveyor_platform(settings) as (publisher, jobs, children):
        message = JobSubmitted.model_validate({"job_id": f"bench{int(time.time())}",
                                               "spec": {"tasks": tasks}})
        await publisher.publish(JOBS_EXCHANGE, "job.submitted", message)
        sampler = asyncio.create_task(watch(children)) if watch else None

        async def ended() -> bool:
            found: int = await jobs.count_documents(
                {"_id": message.job_id, "status": {"$in": [2, 3, 4]}})
            return found == 1

        await wait_for(ended, 1800, "the benchmark job")
        if sampler:
            sampler.cancel()
        document: dict[str, Any] = await jobs.find_one({"_id": message.job_id}) or {}
        if document.get("status") != 2:
            raise RuntimeError(f"benchmark job ended {document.get('status')}: {document}")
        return document


def task_seconds(document: dict[str, Any], task: int) -> float:
    entry = document["tasks"][f"t{task}"]
    return float((entry["finished"] - entry["started"]).total_seconds())


async def storage(settings: Settings, size: int) -> list[dict[str, Any]]:
    folder = Path(tempfile.mkdtemp(prefix="conveyor-bench-"))
    source = folder / "big.bin"
    await asyncio.to_thread(big_file, source, size)
    async with open_objects(settings) as objects:
        await objects.upload_file("samples/bench-big.bin", source)
        peak = 0

        async def watch(children: list[ChildProcess]) -> None:
            nonlocal peak
            workers = [psutil.Process(c.pid) for c in children if c.name.startswith("worker")]
            while True:
                peak = max([peak, *(w.memory_info().rss for w in workers)])
                await asyncio.sleep(0.2)

        document = await run_job(settings, [
            {"tool": "storage:get",
             "parameters": {"source": f"s3://{settings.s3_bucket}/samples/bench-big.bin"}},
            {"tool": "storage:put", "parameters": {"source": "bench-big.bin"}},
        ], watch)
        ours = task_seconds(document, 1) + task_seconds(document, 2)
        target = folder / "back.bin"
        started = time.perf_counter()
        await objects.download_file("samples/bench-big.bin", target)
        await objects.upload_file("samples/bench-big-copy.bin", target)
        peer = time.perf_counter() - started
        for key in ("samples/bench-big.bin", "samples/bench-big-copy.bin"):
            await objects.delete(key)
    await asyncio.to_thread(shutil.rmtree, folder, True)
    moved = 2 * size / MB  # down and up again
    return [row("storage_transfer", moved / ours, "MB/s", "minio_client", moved / peer,
                f"{size // MB} MiB down and up again (moto_server: the S3 ceiling here); "
                f"worker peak RSS {peak / MB:.0f} MB; ours: the two tasks' own times")]


async def transcode(settings: Settings, seconds: int) -> list[dict[str, Any]]:
    folder = Path(tempfile.mkdtemp(prefix="conveyor-bench-"))
    source = folder / "hd.mp4"
    await run_ffmpeg(["-f", "lavfi", "-i", f"testsrc2=duration={seconds}:size=1920x1080:rate=25",
                      "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p",
                      str(source)])
    rendition = Rendition(height=360, crf=23, preset="veryfast")
    async with open_objects(settings) as objects:
        await objects.upload_file("samples/bench-hd.mp4", source)
        document = await run_job(settings, [
            {"tool": "storage:get",
             "parameters": {"source": f"s3://{settings.s3_bucket}/samples/bench-hd.mp4"}},
            {"tool": "media:transcode", "parameters": {"source": "bench-hd.mp4", "renditions": [
                rendition.model_dump()]}},
        ])
        await objects.delete("samples/bench-hd.mp4")
    ours = task_seconds(document, 2)
    started = time.perf_counter()
    await run_ffmpeg(["-i", str(source), *rendition_args(rendition, False),
                      str(folder / "direct.mp4")])
    peer = time.perf_counter() - started
    await asyncio.to_thread(shutil.rmtree, folder, True)
    return [{"name": "transcode", "value": round(ours, 2), "unit": "s", "peer": "ffmpeg_cli",
             "peer_value": round(peer, 2), "ratio": round(peer / ours, 2),
             "notes": f"{seconds} s of 1080p25 to 360p (x264 veryfast, crf 23); ours: the "
                      "task's time (fetch from the workspace, probe, encode, upload); "
                      "ratio = peer's time / ours"}]
