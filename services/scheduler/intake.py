"""The scheduler's consumers: jobs (from the gateway or straight from a producer) and the
workers' task events."""

from __future__ import annotations

from datetime import UTC, datetime

import structlog
from pymongo.errors import DuplicateKeyError

from services.scheduler.control import Stopper
from services.scheduler.machine import Machine
from shared.consumer import Delivery
from shared.errors import PermanentError
from shared.jobs import new_job_document, ordered_tasks
from shared.messages import (
    JobControl,
    JobSubmitted,
    TaskFailed,
    TaskProgress,
    TaskStarted,
    TaskSucceeded,
)
from shared.secrets import sealer_for
from shared.settings import Settings
from shared.store import Document, Store
from shared.toolspecs import task_parameter_errors
from shared.validation import region_errors

log = structlog.get_logger(__name__)


def interrupted(delivery: Delivery) -> bool:
    """Delivered before: an earlier delivery may have stopped half-way."""
    return delivery.redelivered or delivery.attempt > 1


class Intake:
    def __init__(self, store: Store, machine: Machine, settings: Settings) -> None:
        self.store = store
        self.machine = machine
        self.settings = settings
        self.stopper = Stopper(store, machine.publisher)

    async def on_job_message(self, delivery: Delivery) -> None:
        message = delivery.message
        if isinstance(message, JobSubmitted):
            job = await self.store.jobs.find_one({"_id": message.job_id})
            if job is None:
                job, created = await self.create_job(message)
                if created:  # stored with its first task marked dispatched: send it
                    await self.machine.send(job, ordered_tasks(job)[0]["id"])
                    return
            await self.machine.advance(job, interrupted(delivery))
        elif isinstance(message, JobControl):
            if message.action == "stop":
                await self.stopper.on_stop(message, delivery)
                return
            # A restart: the gateway reset the job; from here it runs as a new one does.
            job = await self.store.jobs.find_one({"_id": message.job_id})
            if job is None:
                raise PermanentError(f"job.control for unknown job {message.job_id}")
            await self.machine.advance(job, interrupted(delivery))
        else:
            raise PermanentError(f"{message.type} does not belong on the jobs queue")

    async def create_job(self, message: JobSubmitted) -> tuple[Document, bool]:
        """A job published straight onto RabbitMQ: validated with the gateway's code, then
        stored. Invalid ones are dead-lettered with the reason."""
        spec = message.spec
        region = spec.region or self.settings.default_region
        problems = task_parameter_errors(spec) + region_errors(
            region, self.settings.regions, "spec.region")
        organization = None
        if message.organization_id is not None:
            org = await self.store.organizations.find_one({"_id": message.organization_id})
            if org is None:
                problems.append({"field": "organization_id",
                                 "message": f"no organization {message.organization_id!r}"})
            else:
                organization = org["name"]
        user = None
        if message.user_id is not None:
            found = await self.store.users.find_one({"_id": message.user_id})
            user = found["name"] if found else None
        if problems:
            raise PermanentError("invalid job: " + "; ".join(
                f"{p['field']}: {p['message']}" for p in problems))
        document = new_job_document(
            message.job_id, spec, region=region, organization_id=message.organization_id,
            organization=organization, user_id=message.user_id, user=user,
            job_bundle_id=None, job_bundle=None, now=datetime.now(UTC),
            sealer=sealer_for(self.settings),
        )
        document["created"] = message.created_at
        # Created with its first task claimed for dispatch: one write instead of two. If the
        # publish after it is lost, the redelivered message re-sends it (plan: RESEND).
        ordered_tasks(document)[0].update(dispatched=1, attempt=1)
        document["waiting_since"] = datetime.now(UTC)
        try:
            await self.store.jobs.insert_one(document)
        except DuplicateKeyError:
            existing = await self.store.jobs.find_one({"_id": message.job_id})
            return (existing or document), False
        log.info("job created from a produced message", tasks=len(spec.tasks))
        return document, True

    async def on_event(self, delivery: Delivery) -> None:
        event = delivery.message
        if isinstance(event, TaskStarted):
            await self.machine.on_started(event)
        elif isinstance(event, TaskProgress):
            await self.machine.on_progress(event)
        elif isinstance(event, TaskSucceeded):
            await self.machine.on_succeeded(event, interrupted(delivery))
        elif isinstance(event, TaskFailed):
            await self.machine.on_failed(event, interrupted(delivery))
        else:
            raise PermanentError(f"{event.type} does not belong on the events queue")
