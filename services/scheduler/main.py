"""`conveyor scheduler`: consume jobs and task events until SIGTERM."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from services.scheduler.intake import Intake
from services.scheduler.machine import Machine
from services.scheduler.notify import Notifier
from services.scheduler.presence import Presence
from services.scheduler.sweeper import TICK, Sweeper
from shared.consumer import Consuming
from shared.periodic import Periodic
from shared.runtime import Resources, run_service, serve_consumers
from shared.settings import Settings
from shared.store import open_store
from shared.topology import SCHEDULER_EVENTS, SCHEDULER_JOBS


async def serve(
    settings: Settings, stop: asyncio.Event | None = None, ready: asyncio.Event | None = None
) -> None:
    def wire(resources: Resources) -> Sequence[Consuming]:
        store = resources.need_store()
        notifier = Notifier(store, resources.need_objects(), settings)
        resources.on_close(lambda: notifier.close(settings.grace_period))
        machine = Machine(store, resources.broker.publisher, notifier.job_finished)
        intake = Intake(store, machine, settings)
        presence = Presence(resources.broker.connection, resources.broker.topology)
        resources.on_close(presence.close)
        resources.repeat(Periodic("sweep", Sweeper(machine, presence, settings).tick, TICK))
        return [
            resources.broker.consumer(SCHEDULER_JOBS, intake.on_job_message,
                                      outage=resources.store_outage()),
            resources.broker.consumer(SCHEDULER_EVENTS, intake.on_event,
                                      outage=resources.store_outage()),
        ]

    await serve_consumers(
        settings, "scheduler", port=settings.scheduler_port, prefetch=settings.prefetch,
        wire=wire, store=open_store, use_objects=True, stop=stop, ready=ready,
    )


def main(settings: Settings) -> int:
    return run_service("scheduler", lambda: serve(settings))
