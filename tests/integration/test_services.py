"""Each service as a real process: it starts, answers its health endpoints, does its work,
and on SIGTERM stops taking messages, finishes (or hands back) what it holds, and exits 0."""

from __future__ import annotations

import asyncio
import signal
from datetime import UTC, datetime
from pathlib import Path

import pytest

from services.dev.servers import LocalServers, free_port
from shared.messages import JobSubmitted, LogEntry, TaskDispatch, TaskFailed, decode
from shared.runtime import Broker
from shared.settings import Settings
from shared.store import open_store
from shared.topology import (
    JOBS_EXCHANGE,
    LOGS_EXCHANGE,
    SCHEDULER_EVENTS,
    TASKS_EXCHANGE,
    tasks_queue,
)
from tests.messaging import wait_for_message
from tests.processes import conveyor, wait_exit, wait_status

SERVICES = ["gateway", "scheduler", "logger", "worker"]


def sleep_task(job_id: str, seconds: float) -> TaskDispatch:
    return TaskDispatch(job_id=job_id, task_id=0, attempt=1, region="local",
                        tool="debug:sleep", parameters={"seconds": seconds},
                        workspace=f"jobs/{job_id}/")


async def next_event(broker: Broker, expected: str) -> object:
    message = await wait_for_message(broker, SCHEDULER_EVENTS, within=20)
    event = decode(message.body)
    assert event.type == expected, event
    return event


@pytest.mark.parametrize("service", SERVICES)
async def test_service_starts_is_ready_and_stops_cleanly_on_sigterm(
    service: str, subprocess_env: dict[str, str], tmp_path: Path
) -> None:
    port = free_port()
    async with conveyor([service, "--port", str(port)], subprocess_env,
                        tmp_path / f"{service}.log") as child:
        ready = await wait_status(f"http://127.0.0.1:{port}/readyz", 200, child)
        assert ready["service"] == service
        assert "rabbitmq" in ready["checks"]
        alive = await wait_status(f"http://127.0.0.1:{port}/healthz", 200, child)
        assert alive["status"] == "alive"
        child.process.send_signal(signal.SIGTERM)
        assert await wait_exit(child, 20) == 0


async def test_worker_finishes_running_task_on_sigterm(
    subprocess_env: dict[str, str], broker: Broker, tmp_path: Path
) -> None:
    port = free_port()
    async with conveyor(["worker", "--port", str(port), "--concurrency", "2"], subprocess_env,
                        tmp_path / "worker.log") as child:
        await wait_status(f"http://127.0.0.1:{port}/readyz", 200, child)
        await broker.publisher.publish(TASKS_EXCHANGE, "local", sleep_task("graceful01", 2))
        await next_event(broker, "task.started")
        child.process.send_signal(signal.SIGTERM)
        # Not taking new work: a task published now stays queued.
        await asyncio.sleep(0.3)
        await broker.publisher.publish(TASKS_EXCHANGE, "local", sleep_task("late000001", 0))
        assert await wait_exit(child, 20) == 0
    # The running task finished within the grace period and said so.
    progress_or_done = await next_event(broker, "task.progress")
    assert progress_or_done is not None
    await next_event(broker, "task.progress")
    succeeded = await next_event(broker, "task.succeeded")
    assert succeeded.job_id == "graceful01"  # type: ignore[attr-defined]
    left = await wait_for_message(broker, tasks_queue("local"))
    assert decode(left.body).job_id == "late000001"


async def test_worker_hands_back_task_when_grace_period_runs_out(
    subprocess_env: dict[str, str], broker: Broker, tmp_path: Path
) -> None:
    port = free_port()
    env = {**subprocess_env, "CONVEYOR_GRACE_PERIOD": "0.5"}
    async with conveyor(["worker", "--port", str(port)], env, tmp_path / "worker.log") as child:
        await wait_status(f"http://127.0.0.1:{port}/readyz", 200, child)
        await broker.publisher.publish(TASKS_EXCHANGE, "local", sleep_task("longtask01", 120))
        await next_event(broker, "task.started")
        started = asyncio.get_running_loop().time()
        child.process.send_signal(signal.SIGTERM)
        assert await wait_exit(child, 20) == 0
        assert asyncio.get_running_loop().time() - started < 10
    # Handed back at once: reported as a retryable failure (and its delivery acked), which
    # the scheduler retries as the next attempt.
    while (event := decode((await wait_for_message(broker, SCHEDULER_EVENTS)).body)).type \
            == "task.progress":
        pass
    assert isinstance(event, TaskFailed)
    assert (event.job_id, event.retryable) == ("longtask01", True)
    assert event.error.error_class == "WorkerStopped"


async def test_scheduler_records_a_produced_job_once(
    subprocess_env: dict[str, str], broker: Broker, settings: Settings, tmp_path: Path
) -> None:
    port = free_port()
    message = JobSubmitted.model_validate(
        {"job_id": "produced001", "spec": {"tasks": [{"tool": "debug:sleep"}], "tags": ["t"]}}
    )
    async with conveyor(["scheduler", "--port", str(port)], subprocess_env,
                        tmp_path / "scheduler.log") as child:
        await wait_status(f"http://127.0.0.1:{port}/readyz", 200, child)
        await broker.publisher.publish(JOBS_EXCHANGE, "job.submitted", message)
        await broker.publisher.publish(JOBS_EXCHANGE, "job.submitted", message)  # duplicate
        async with open_store(settings, "test") as store:
            deadline = asyncio.get_running_loop().time() + 15
            while await store.jobs.count_documents({"_id": "produced001"}) == 0:
                assert asyncio.get_running_loop().time() < deadline, "job never recorded"
                await asyncio.sleep(0.1)
            job = await store.jobs.find_one({"_id": "produced001"})
            assert job is not None
            assert job["spec"]["tags"] == ["t"]
            assert await store.jobs.count_documents({}) == 1


async def test_logger_stores_a_redelivered_entry_once(
    subprocess_env: dict[str, str], broker: Broker, settings: Settings, tmp_path: Path
) -> None:
    port = free_port()
    entry = LogEntry(job_id="logjob0001", task_id=0, attempt=1, seq=0,
                     timestamp=datetime.now(UTC), message="hello")
    async with conveyor(["logger", "--port", str(port)], subprocess_env,
                        tmp_path / "logger.log") as child:
        await wait_status(f"http://127.0.0.1:{port}/readyz", 200, child)
        for _ in range(2):
            await broker.publisher.publish(LOGS_EXCHANGE, "log.local", entry)
        second = entry.model_copy(update={"seq": 1, "message": "world"})
        await broker.publisher.publish(LOGS_EXCHANGE, "log.local", second)
        async with open_store(settings, "test") as store:
            deadline = asyncio.get_running_loop().time() + 15
            while await store.logs.count_documents({"job_id": "logjob0001"}) < 2:
                assert asyncio.get_running_loop().time() < deadline, "entries never stored"
                await asyncio.sleep(0.1)
            messages = [doc["message"] async for doc in store.logs.find().sort("seq", 1)]
    assert messages == ["hello", "world"]


async def test_readyz_names_the_dependency_that_stopped_answering(
    subprocess_env: dict[str, str], tmp_path: Path
) -> None:
    own_s3 = LocalServers()
    try:
        endpoint = await own_s3.start_s3(tmp_path)
        env = {**subprocess_env, "CONVEYOR_S3_ENDPOINT": endpoint}
        port = free_port()
        async with conveyor(["worker", "--port", str(port)], env, tmp_path / "w.log") as child:
            await wait_status(f"http://127.0.0.1:{port}/readyz", 200, child)
            await own_s3.stop()
            body = await wait_status(f"http://127.0.0.1:{port}/readyz", 503, child)
            assert list(body["failing"]) == ["s3"]
            assert (await wait_status(f"http://127.0.0.1:{port}/healthz", 200, child))
    finally:
        await own_s3.stop()


@pytest.mark.parametrize(
    ("args", "variable", "value", "message"),
    [
        (["scheduler"], "CONVEYOR_PREFETCH", "0", "invalid setting CONVEYOR_PREFETCH"),
        (["worker", "--region", "mars"], None, None, "region 'mars' is not one of"),
        (["logger", "--env-file", "/nonexistent/conveyor.env"], None, None, "does not exist"),
        (["gateway"], "CONVEYOR_AMQP_URL", "amqp://127.0.0.1:1/", "RabbitMQ at"),
        (["gateway"], "CONVEYOR_S3_PUBLIC_ENDPOINT", "minio:9000",
         "invalid setting CONVEYOR_S3_PUBLIC_ENDPOINT (got 'minio:9000'): must start with"),
    ],
)
async def test_bad_configuration_is_one_clear_line_and_nonzero_exit(
    subprocess_env: dict[str, str], tmp_path: Path, args: list[str], variable: str | None,
    value: str | None, message: str,
) -> None:
    env = dict(subprocess_env)
    if variable and value:
        env[variable] = value
    log = tmp_path / "out.log"
    async with conveyor([*args, "--port", str(free_port())], env, log) as child:
        code = await wait_exit(child, 30)
    output = log.read_text()
    assert code != 0
    assert message in output
    assert "Traceback" not in output
