"""A `storage:put` killed mid-upload (SIGKILL of a real worker process) leaves an unfinished
multipart upload in the bucket; the retry of the put, or the sweep of stale uploads, aborts
it. Run against the real S3 stand-in; the object is large enough for multipart."""

from __future__ import annotations

import asyncio
import signal
from datetime import timedelta
from pathlib import Path

import pytest

from services.dev.servers import free_port
from services.worker.main import serve as serve_worker
from shared.messages import TaskDispatch, TaskSucceeded, decode
from shared.objects import (
    IncompleteUpload,
    ObjectStore,
    open_objects,
    sweep_stale_uploads,
    upload_sweeper,
)
from shared.runtime import Broker
from shared.settings import Settings
from shared.topology import SCHEDULER_EVENTS, TASKS_EXCHANGE
from tests.messaging import wait_for_message
from tests.platform import service
from tests.processes import conveyor, wait_status

SIZE = 160 * 1024**2  # parts of 5 MiB: multipart, and slow enough to be killed midway
JOB = "leakyput01"
KEY = f"outputs/{JOB}/big.bin"
MiB = 1024**2


def put(attempt: int) -> TaskDispatch:
    return TaskDispatch(job_id=JOB, task_id=1, attempt=attempt, region="local",
                        tool="storage:put", parameters={"source": "big.bin"},
                        workspace=f"jobs/{JOB}/")


def uploaded_bytes(objects: ObjectStore, upload: IncompleteUpload) -> int:
    parts = objects.client._list_parts(objects.bucket, upload.key, upload.upload_id)
    return sum(part.size or 0 for part in parts.parts)


async def killed_mid_put(objects: ObjectStore, broker: Broker, env: dict[str, str],
                         log: Path, attempt: int) -> list[IncompleteUpload]:
    """Start a worker process, give it the put, SIGKILL it once 10 MiB of parts are up."""
    port = free_port()
    async with conveyor(["worker", "--port", str(port)], env, log) as child:
        await wait_status(f"http://127.0.0.1:{port}/readyz", 200, child)
        await broker.publisher.publish(TASKS_EXCHANGE, "local", put(attempt))
        deadline = asyncio.get_running_loop().time() + 30
        while True:
            uploads = await objects.incomplete_uploads(KEY)
            up = await asyncio.to_thread(uploaded_bytes, objects, uploads[-1]) if uploads else 0
            if up >= 10 * MiB:
                break
            assert asyncio.get_running_loop().time() < deadline, log.read_text()
            assert not await objects.exists(KEY), "the put ended before it could be killed"
            await asyncio.sleep(0.02)
        child.process.send_signal(signal.SIGKILL)
        assert await child.process.wait() == -signal.SIGKILL
    left = await objects.incomplete_uploads(KEY)
    leaked = sum([await asyncio.to_thread(uploaded_bytes, objects, u) for u in left])
    print(f"killed mid-put: {len(left)} unfinished upload(s), {leaked / MiB:.0f} MiB of parts "
          f"of a {SIZE // MiB} MiB object left in the bucket")
    assert left
    assert not await objects.exists(KEY)
    return left


async def succeeded(broker: Broker, attempt: int) -> TaskSucceeded:
    while True:
        event = decode((await wait_for_message(broker, SCHEDULER_EVENTS, within=60)).body)
        if isinstance(event, TaskSucceeded) and event.attempt == attempt:
            return event


async def test_a_put_killed_mid_upload_leaves_nothing_behind(
    settings: Settings, broker: Broker, subprocess_env: dict[str, str], tmp_path: Path
) -> None:
    source = tmp_path / "big.bin"
    with source.open("wb") as handle:
        handle.truncate(SIZE)
    async with open_objects(settings) as objects:
        await objects.upload_file(f"jobs/{JOB}/big.bin", source)
        source.unlink()

        # The retry of the put aborts what the killed attempt left, then stores the object.
        left = await killed_mid_put(objects, broker, subprocess_env, tmp_path / "w1.log", 1)
        async with service(serve_worker, settings, "local"):
            await broker.publisher.publish(TASKS_EXCHANGE, "local", put(2))
            done = await succeeded(broker, 2)
        assert [o.path for o in done.outputs] == [KEY]
        assert await objects.incomplete_uploads() == []  # the killed attempt's too
        assert await objects.size(KEY) == SIZE
        assert left

        # A leftover no retry comes for: the sweep of stale uploads aborts it.
        await objects.delete(KEY)
        await killed_mid_put(objects, broker, subprocess_env, tmp_path / "w3.log", 3)
        # Begun well over 3.6 ms ago: 10 MiB of its parts were up before the kill.
        stale_now = settings.model_copy(update={"stale_upload_hours": 1e-6})
        # As a worker runs it from its start: the first round is at once.
        sweeping = upload_sweeper(objects, stale_now)
        sweeping.start()
        try:
            deadline = asyncio.get_running_loop().time() + 10
            while await objects.incomplete_uploads():
                assert asyncio.get_running_loop().time() < deadline, "not swept within 10 s"
                await asyncio.sleep(0.05)
        finally:
            await sweeping.stop()
        assert await sweep_stale_uploads(objects, stale_now) == 0  # nothing left to abort


async def test_the_sweep_leaves_an_upload_in_progress_alone(settings: Settings) -> None:
    async with open_objects(settings) as objects:
        client = objects.client
        await asyncio.to_thread(
            client._create_multipart_upload, objects.bucket, "jobs/x/running.bin", {})
        try:
            [fresh] = await objects.incomplete_uploads("jobs/x/")
            assert fresh.initiated is not None
            if fresh.initiated.year < 2011:
                pytest.skip("the S3 stand-in (moto) reports every upload as begun on "
                            "2010-11-10, so it cannot tell a fresh upload from a stale one")
            assert await objects.abort_stale_uploads(timedelta(hours=24)) == []
            assert await objects.incomplete_uploads("jobs/x/") == [fresh]
        finally:
            await objects.abort_uploads_of("jobs/x/running.bin")
        assert await objects.incomplete_uploads() == []
