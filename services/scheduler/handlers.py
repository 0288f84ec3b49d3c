"""What the scheduler does with each message it consumes."""

from __future__ import annotations

from datetime import UTC, datetime

import structlog
from pymongo.errors import DuplicateKeyError

from shared.consumer import Delivery
from shared.errors import PermanentError
from shared.messages import JobSubmitted
from shared.store import Store

log = structlog.get_logger(__name__)


class JobIntake:
    def __init__(self, store: Store) -> None:
        self.store = store

    async def on_job_message(self, delivery: Delivery) -> None:
        message = delivery.message
        if not isinstance(message, JobSubmitted):
            raise PermanentError(f"{message.type} does not belong on the jobs queue")
        await self.record_job(message)

    async def record_job(self, message: JobSubmitted) -> None:
        """Create the job document unless the gateway (or a duplicate delivery) did; an
        insert that hits the existing id is the idempotent path, correct on every store."""
        now = datetime.now(UTC)
        try:
            await self.store.jobs.insert_one({
                "_id": message.job_id,
                "spec": message.spec.model_dump(mode="json"),
                "organization_id": message.organization_id,
                "user_id": message.user_id,
                "created": message.created_at,
                "modified": now,
            })
        except DuplicateKeyError:
            log.info("job already recorded")
            return
        log.info("job recorded", tasks=len(message.spec.tasks))

    async def on_event(self, delivery: Delivery) -> None:
        log.info("task event", event=delivery.message.type)
