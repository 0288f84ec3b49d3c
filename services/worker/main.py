"""`conveyor worker`: run the tasks of one region until SIGTERM."""

from __future__ import annotations

from services.worker.runner import TaskRunner, worker_identity
from shared.consumer import Consumer
from shared.errors import ConfigError
from shared.runtime import Resources, run_service, serve_consumers
from shared.settings import Settings
from shared.topology import tasks_queue


def main(settings: Settings, region: str | None = None) -> int:
    region = region or settings.default_region
    if region not in settings.regions:
        raise ConfigError(
            f"region {region!r} is not one of CONVEYOR_REGIONS ({', '.join(settings.regions)})"
        )

    def wire(resources: Resources) -> list[Consumer]:
        runner = TaskRunner(resources.broker.publisher, resources.need_objects(), settings,
                            worker_identity())
        return [resources.broker.consumer(tasks_queue(region), runner.on_task)]

    # Prefetch equals concurrency: a worker holds only tasks it is running, so a slow worker
    # never sits on work that an idle one could take.
    return run_service("worker", lambda: serve_consumers(
        settings, "worker", port=settings.worker_port, prefetch=settings.worker_concurrency,
        wire=wire, use_objects=True,
    ))
