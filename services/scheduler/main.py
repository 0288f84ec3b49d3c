"""`conveyor scheduler`: consume jobs and task events until SIGTERM."""

from __future__ import annotations

from services.scheduler.handlers import JobIntake
from shared.consumer import Consumer
from shared.runtime import Resources, run_service, serve_consumers
from shared.settings import Settings
from shared.topology import SCHEDULER_EVENTS, SCHEDULER_JOBS


def wire(resources: Resources) -> list[Consumer]:
    intake = JobIntake(resources.need_store())
    return [
        resources.broker.consumer(SCHEDULER_JOBS, intake.on_job_message),
        resources.broker.consumer(SCHEDULER_EVENTS, intake.on_event),
    ]


def main(settings: Settings) -> int:
    return run_service("scheduler", lambda: serve_consumers(
        settings, "scheduler", port=settings.scheduler_port, prefetch=settings.prefetch,
        wire=wire, use_store=True,
    ))
