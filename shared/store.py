"""MongoDB through PyMongo's asyncio API: the client lifecycle and every index, created at
start (creating an index that exists is a no-op, so every replica may do it)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import structlog
from pymongo import ASCENDING, DESCENDING, AsyncMongoClient
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import OperationFailure, PyMongoError

from shared.errors import DependencyError
from shared.settings import Settings

log = structlog.get_logger(__name__)
Document = dict[str, Any]
PING_TIMEOUT = 5.0
DAY = 86_400


@dataclass
class Store:
    client: AsyncMongoClient[Document]
    db: AsyncDatabase[Document]

    @property
    def jobs(self) -> AsyncCollection[Document]:
        return self.db["jobs"]

    @property
    def logs(self) -> AsyncCollection[Document]:
        return self.db["logs"]

    @property
    def organizations(self) -> AsyncCollection[Document]:
        return self.db["organizations"]

    @property
    def users(self) -> AsyncCollection[Document]:
        return self.db["users"]

    @property
    def api_keys(self) -> AsyncCollection[Document]:
        return self.db["api_keys"]

    @property
    def job_bundles(self) -> AsyncCollection[Document]:
        return self.db["job_bundles"]

    @property
    def gate_jobs(self) -> AsyncCollection[Document]:
        """Jobs of the GATE Cloud-style API: their configuration; each run is a job in `jobs`
        under the same id."""
        return self.db["gate_jobs"]

    @property
    def data_bundles(self) -> AsyncCollection[Document]:
        return self.db["data_bundles"]

    @property
    def idempotency(self) -> AsyncCollection[Document]:
        return self.db["idempotency"]

    @property
    def rate_limits(self) -> AsyncCollection[Document]:
        return self.db["rate_limits"]

    async def ping(self) -> None:
        try:
            await asyncio.wait_for(self.client.admin.command("ping"), PING_TIMEOUT)
        except (PyMongoError, TimeoutError) as exc:
            raise DependencyError(f"MongoDB did not answer: {exc}") from exc

    async def ensure_indexes(self, log_retention_days: int) -> None:
        await self.jobs.create_index([("organization_id", ASCENDING), ("created", DESCENDING)])
        await self.jobs.create_index([("status", ASCENDING), ("heartbeat", ASCENDING)])
        await self.jobs.create_index([("status", ASCENDING), ("waiting_since", ASCENDING)])
        await self.jobs.create_index([("status", ASCENDING), ("running_worker", ASCENDING)])
        await self.jobs.create_index([("tags", ASCENDING)])
        await self.jobs.create_index([("outbox", ASCENDING), ("created", ASCENDING)])
        # One index both makes a redelivered entry a harmless duplicate and pages a task's
        # log: `position` is (attempt, seq) as one number. Every index costs ingest speed.
        await self.logs.create_index(
            [("job_id", ASCENDING), ("task_id", ASCENDING), ("position", ASCENDING)],
            unique=True, name="entry_identity",
        )
        await self.logs.create_index([("job_id", ASCENDING), ("timestamp", DESCENDING)])
        await self.rate_limits.create_index("expires", expireAfterSeconds=0)
        await self.idempotency.create_index("expires", expireAfterSeconds=0)
        await self._ensure_ttl(self.logs, "timestamp", log_retention_days * DAY)
        await self.organizations.create_index("name", unique=True)
        await self.users.create_index("name", unique=True)
        await self.api_keys.create_index("key_hash", unique=True)
        await self.api_keys.create_index("prefix")
        await self.job_bundles.create_index(
            [("organization_id", ASCENDING), ("name", ASCENDING)], unique=True
        )
        await self.gate_jobs.create_index([("organization_id", ASCENDING), ("created", ASCENDING)])
        # What GATE housekeeping looks for every minute: runs to settle, results to expire.
        await self.gate_jobs.create_index([("phase", ASCENDING), ("unsettled", ASCENDING)])
        await self.gate_jobs.create_index("result_bundle")
        await self.data_bundles.create_index(
            [("organization_id", ASCENDING), ("created", ASCENDING)])
        await self.data_bundles.create_index([("kind", ASCENDING), ("created", ASCENDING)])

    async def _ensure_ttl(
        self, collection: AsyncCollection[Document], field: str, seconds: int
    ) -> None:
        name = f"{field}_ttl"
        try:
            await collection.create_index(field, name=name, expireAfterSeconds=seconds)
        except OperationFailure:
            # The retention setting changed: an index's TTL can only be altered in place.
            log.info("changing log retention", seconds=seconds)
            await self.db.command(
                "collMod", collection.name, index={"name": name, "expireAfterSeconds": seconds}
            )


@asynccontextmanager
async def open_store(settings: Settings, app_name: str) -> AsyncIterator[Store]:
    client: AsyncMongoClient[Document] = AsyncMongoClient(
        settings.mongo_url, tz_aware=True, appname=app_name,
        serverSelectionTimeoutMS=int(PING_TIMEOUT * 1000),
    )
    try:
        store = Store(client, client[settings.mongo_db])
        await store.ping()
        await store.ensure_indexes(settings.log_retention_days)
        yield store
    finally:
        await client.close()
