"""`conveyor worker`: run the tasks of one region until SIGTERM."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from services.worker.control import ControlListener
from services.worker.runner import TaskRunner, remove_orphaned_scratch, worker_identity
from shared.consumer import Consuming
from shared.errors import ConfigError
from shared.objects import upload_sweeper
from shared.runtime import Resources, run_service, serve_consumers
from shared.settings import Settings
from shared.topology import tasks_queue


def check_region(settings: Settings, region: str | None) -> str:
    region = region or settings.default_region
    if region not in settings.regions:
        raise ConfigError(
            f"region {region!r} is not one of CONVEYOR_REGIONS ({', '.join(settings.regions)})"
        )
    return region


async def serve(
    settings: Settings, region: str, stop: asyncio.Event | None = None,
    ready: asyncio.Event | None = None,
) -> None:
    def wire(resources: Resources) -> Sequence[Consuming]:
        broker = resources.broker
        objects = resources.need_objects()
        runner = TaskRunner(broker.publisher, objects, settings, worker_identity())
        # Uploads of workers killed mid-put that no retry came back for.
        resources.repeat(upload_sweeper(objects, settings))
        return [
            ControlListener(broker.channel, broker.topology, runner.worker_id,
                            runner.on_control),
            broker.consumer(tasks_queue(region), runner.on_task,
                            limit=settings.worker_concurrency),
        ]

    # What workers killed on this machine left behind (their tools' scratch files).
    await asyncio.to_thread(remove_orphaned_scratch, settings.scratch_dir)
    # Prefetch equals concurrency and a task's delivery is acked when the task ends: the
    # broker never hands a worker more than it can run (so a worker never has to hand one
    # back, which would count against the queue's delivery limit), and a slow worker never
    # sits on work that an idle one could take.
    await serve_consumers(
        settings, "worker", port=settings.worker_port, prefetch=settings.worker_concurrency,
        wire=wire, use_objects=True, stop=stop, ready=ready,
    )


def main(settings: Settings, region: str | None = None) -> int:
    chosen = check_region(settings, region)
    return run_service("worker", lambda: serve(settings, chosen))
