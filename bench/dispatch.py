"""`dispatch_noop` and `dispatch_latency_p50/p99`: one-task jobs (`debug:sleep 0`) published
straight onto RabbitMQ by an internal producer, through scheduler and workers to Completed in
the store; against Celery (prefork, late acks, persistent) and Dramatiq (RabbitMQ broker)
running no-op tasks on the same broker with the same number of worker processes."""

from __future__ import annotations

import asyncio
import os
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path
from typing import Any

from pymongo import AsyncMongoClient

from bench.common import remove_queues, row
from services.dev.processes import ChildProcess
from services.dev.servers import free_port
from shared.broker import Publisher, open_amqp
from shared.messages import JobSubmitted
from shared.runtime import topology_for
from shared.settings import Settings, to_env_lines
from shared.store import Document
from shared.topology import JOBS_EXCHANGE

WORKER_PROCESSES = 2
ROOT = Path(__file__).resolve().parents[1]
LOGS = Path(tempfile.gettempdir()) / "conveyor-bench-logs"


def env_for(settings: Settings, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CONVEYOR_")}
    for line in to_env_lines(settings):
        name, _, value = line.partition("=")
        env[name] = value
    env.update(extra, PYTHONPATH=str(ROOT))
    return env


async def wait_for(check: Callable[[], Any], within: float, what: str) -> None:
    deadline = time.monotonic() + within
    while not await check():
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what} did not happen within {within:g} s")
        await asyncio.sleep(0.1)


@asynccontextmanager
async def processes(
    *commands: tuple[str, list[str], dict[str, str]],
) -> AsyncIterator[list[ChildProcess]]:
    LOGS.mkdir(exist_ok=True)
    async with AsyncExitStack() as stack:
        children = []
        for name, argv, env in commands:
            child = await ChildProcess.start(name, argv, log_path=LOGS / f"{name}.log", env=env,
                                             stop_timeout=20)
            stack.push_async_callback(child.stop)
            children.append(child)
        yield children


def job(index: int) -> JobSubmitted:
    return JobSubmitted.model_validate({
        "job_id": f"b{uuid.uuid4().hex[:10]}",
        "spec": {"tasks": [{"tool": "debug:sleep", "parameters": {"seconds": 0}}]},
    })


@asynccontextmanager
async def conveyor_platform(
    settings: Settings,
) -> AsyncIterator[tuple[Publisher, Any, list[ChildProcess]]]:
    """Scheduler and worker processes, a producer's publisher, and the jobs collection."""
    settings = settings.model_copy(update={"worker_concurrency": 8, "prefetch": 256})
    cli = [sys.executable, "-m", "services.cli"]
    env = env_for(settings)
    client: AsyncMongoClient[Document] = AsyncMongoClient(settings.mongo_url)
    topology = topology_for(settings)
    try:
        async with AsyncExitStack() as stack:
            connection = await stack.enter_async_context(open_amqp(settings, "bench-producer"))
            publisher = await Publisher.open(connection, topology)
            await topology.declare(publisher.channel)
            children = await stack.enter_async_context(processes(
                ("scheduler", [*cli, "scheduler", "--port", str(free_port())], env),
                *[(f"worker-{i}", [*cli, "worker", "--port", str(free_port())], env)
                  for i in range(WORKER_PROCESSES)],
            ))
            jobs = client[settings.mongo_db]["jobs"]
            warm = job(0)
            await publisher.publish(JOBS_EXCHANGE, "job.submitted", warm)

            async def warmed() -> bool:
                finished: int = await jobs.count_documents({"_id": warm.job_id, "status": 2})
                return finished == 1

            await wait_for(warmed, 60, "the warm-up job")
            yield publisher, jobs, children
            await topology.delete(publisher.channel)
    finally:
        await client.drop_database(settings.mongo_db)
        await client.close()


async def ours_rate(settings: Settings, count: int) -> float:
    async with conveyor_platform(settings) as (publisher, jobs, _):
        batch = [job(i) for i in range(count)]
        started = time.perf_counter()
        await publisher.publish_many((JOBS_EXCHANGE, "job.submitted", m) for m in batch)

        async def drained() -> bool:
            finished: int = await jobs.count_documents({"status": 2})
            return finished >= count + 1

        await wait_for(drained, 600, "all jobs completing")
        return count / (time.perf_counter() - started)


async def ours_latencies(settings: Settings, rate: float, seconds: float) -> list[float]:
    async with conveyor_platform(settings) as (publisher, jobs, _):
        sent = []
        for _ in range(int(rate * seconds)):
            message = job(0)
            await publisher.publish(JOBS_EXCHANGE, "job.submitted", message)
            sent.append(message.job_id)
            await asyncio.sleep(1 / rate)

        async def done() -> bool:
            finished: int = await jobs.count_documents({"_id": {"$in": sent}, "status": 2})
            return finished == len(sent)

        await wait_for(done, 120, "the paced jobs completing")
        latencies = []
        async for document in jobs.find({"_id": {"$in": sent}}):
            started = document["tasks"]["t1"]["started"]
            created = document["created"]
            latencies.append((started - created).total_seconds())
        return latencies


class Marks:
    """The peers' record of tasks run: one line per task, `published started`."""

    def __init__(self) -> None:
        self.path = Path(tempfile.mkstemp(prefix="conveyor-bench-marks-")[1])

    def count(self) -> int:
        return self.path.read_bytes().count(b"\n")

    def latencies(self) -> list[float]:
        pairs = [line.split() for line in self.path.read_text().splitlines()]
        return [float(started) - float(published) for published, started in pairs]


@asynccontextmanager
async def peer(kind: str, settings: Settings) -> AsyncIterator[tuple[Callable[[], None], Marks]]:
    """A running Celery or Dramatiq worker pool and a function that sends one task."""
    queue = f"bench-{kind}-{uuid.uuid4().hex[:6]}"
    marks = Marks()
    env = env_for(settings, BENCH_AMQP_URL=settings.amqp_url, BENCH_QUEUE=queue,
                  BENCH_MARKS=str(marks.path))
    os.environ.update({k: env[k] for k in ("BENCH_AMQP_URL", "BENCH_QUEUE", "BENCH_MARKS")})
    bin_dir = Path(sys.executable).parent
    if kind == "celery":
        from bench.peers import celery_app

        celery_app.app.conf.task_default_queue = queue
        celery_app.app.conf.broker_url = settings.amqp_url
        celery_app.app.conf.broker_transport_options = {"confirm_publish": True}
        argv = [str(bin_dir / "celery"), "-A", "bench.peers.celery_app", "worker", "-P",
                "prefork", "-c", str(WORKER_PROCESSES), "-Q", queue, "--without-gossip",
                "--without-mingle", "--without-heartbeat", "-l", "WARNING"]

        def send() -> None:
            celery_app.noop.apply_async(args=[time.time()], queue=queue)
    else:
        import importlib

        from bench.peers import dramatiq_app
        dramatiq_app = importlib.reload(dramatiq_app)
        argv = [str(bin_dir / "dramatiq"), "bench.peers.dramatiq_app", "-p",
                str(WORKER_PROCESSES), "-t", "8", "-Q", queue]

        def send() -> None:
            dramatiq_app.noop.send(time.time())

    try:
        async with processes((kind, argv, env)):
            await asyncio.to_thread(send)

            async def warmed() -> bool:
                return marks.count() >= 1

            await wait_for(warmed, 60, f"{kind}'s warm-up task")
            yield send, marks
    finally:
        await remove_queues(settings, queue)  # and Dramatiq's .DQ and .XQ beside it
    marks.path.unlink(missing_ok=True)


async def peer_rate(kind: str, settings: Settings, count: int) -> float:
    async with peer(kind, settings) as (send, marks):
        started = time.perf_counter()

        def send_all() -> None:
            for _ in range(count):
                send()

        await asyncio.to_thread(send_all)

        async def drained() -> bool:
            return marks.count() >= count + 1

        await wait_for(drained, 600, f"{kind} draining")
        return count / (time.perf_counter() - started)


async def peer_latencies(kind: str, settings: Settings, rate: float,
                         seconds: float) -> list[float]:
    async with peer(kind, settings) as (send, marks):
        total = int(rate * seconds)
        for _ in range(total):
            await asyncio.to_thread(send)
            await asyncio.sleep(1 / rate)

        async def done() -> bool:
            return marks.count() >= total + 1

        await wait_for(done, 120, f"{kind} paced tasks")
        return marks.latencies()[1:]


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


async def run(settings: Settings, count: int, rate: float, seconds: float) -> list[dict[str, Any]]:
    ours = await ours_rate(settings, count)
    celery = await peer_rate("celery", settings, count)
    dramatiq = await peer_rate("dramatiq", settings, count)
    note = (f"{count} one-task jobs published with confirms onto RabbitMQ; ours: scheduler + "
            f"{WORKER_PROCESSES} worker processes, Completed in the store (nx-27017: ~5 "
            "conditional writes per job); peers: no-op tasks, "
            f"{WORKER_PROCESSES} worker processes")
    rows = [
        row("dispatch_noop", ours, "jobs/s", "celery", celery,
            note + "; Celery prefork, acks_late, persistent, publisher confirms"),
        row("dispatch_noop", ours, "jobs/s", "dramatiq", dramatiq,
            note + "; Dramatiq RabbitmqBroker, 8 threads per process, confirms"),
    ]
    our_latency = await ours_latencies(settings, rate, seconds)
    celery_latency = await peer_latencies("celery", settings, rate, seconds)
    for name, share in (("dispatch_latency_p50", 0.5), ("dispatch_latency_p99", 0.99)):
        ours_ms = percentile(our_latency, share) * 1000
        peer_ms = percentile(celery_latency, share) * 1000
        # Lower is better for latency: the ratio is the peer's over ours.
        rows.append({"name": name, "value": round(ours_ms, 1), "unit": "ms", "peer": "celery",
                     "peer_value": round(peer_ms, 1),
                     "ratio": round(peer_ms / ours_ms, 2) if ours_ms else None,
                     "notes": f"{rate:g} jobs/s for {seconds:g} s; publish to task start "
                              "(ours: the start recorded in the store)"})
    return rows
