"""MongoDB through PyMongo's asyncio API: the client lifecycle and every index, created at
start (creating an index that exists is a no-op, so every replica may do it)."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import structlog
from pymongo import ASCENDING, DESCENDING, AsyncMongoClient
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import ConnectionFailure, OperationFailure, PyMongoError

from shared.errors import DependencyError, DependencyUnavailable
from shared.outage import Outage
from shared.retry import FOREVER, RetryPolicy, retrying
from shared.settings import Settings

log = structlog.get_logger(__name__)
Document = dict[str, Any]
# How long an operation waits for a reachable server: a request on a path that needs the
# store answers 503 this soon when it is down, not after PyMongo's default of 30 s.
SELECTION_TIMEOUT = 2.0
CONNECT_TIMEOUT = 2.0
# A server that accepted the connection and then froze: long enough for any batch we write.
SOCKET_TIMEOUT = 30.0
# A store starting beside the service (`conveyor dev`) gets this long to answer at start-up.
START_TIMEOUT = 5.0
# Pings every half second while the store starts: a refusal (bad credentials) comes back at
# once, and would otherwise be asked again in a busy loop.
PING_AGAIN = RetryPolicy(max_attempts=FOREVER, base_delay=0.5, max_delay=0.5, jitter=0.0)
DAY = 86_400
# What PyMongo raises when no server answers (refused, reset, timed out, no primary).
UNREACHABLE: tuple[type[BaseException], ...] = (ConnectionFailure,)
_USERINFO = re.compile(r"//[^/?#]*@")


def shown_url(url: str) -> str:
    """The URL fit for a message: no user name or password, no options (they may hold
    credentials, e.g. `authMechanismProperties`)."""
    return _USERINFO.sub("//", url.split("?", 1)[0])


def reason_of(exc: BaseException) -> str:
    """PyMongo's message without the topology description it appends, or the class."""
    text = str(exc).split(", Timeout:", 1)[0].strip()
    return text or type(exc).__name__


def unavailable(exc: BaseException) -> DependencyUnavailable:
    return DependencyUnavailable("mongodb", f"MongoDB did not answer: {reason_of(exc)}")


@dataclass
class Store:
    client: AsyncMongoClient[Document]
    db: AsyncDatabase[Document]
    url: str = ""

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
        # The wait outlasts server selection, so PyMongo's reason wins over a bare timeout.
        limit = SELECTION_TIMEOUT + 1
        try:
            await asyncio.wait_for(self.client.admin.command("ping"), limit)
        except TimeoutError as exc:
            raise self._down(f"no answer within {limit:g}s") from exc
        except PyMongoError as exc:
            raise self._down(reason_of(exc)) from exc

    def outage(self) -> Outage:
        """What consumers wait on while this store does not answer."""
        return Outage("mongodb", self.ping, UNREACHABLE)

    def _down(self, reason: str) -> DependencyUnavailable:
        where = f" at {shown_url(self.url)}" if self.url else ""
        return DependencyUnavailable("mongodb", f"MongoDB{where} did not answer: {reason}")

    async def wait_until_up(self, within: float) -> None:
        """Ping until the store answers, for up to `within` seconds; then the last error."""
        await retrying(lambda _: self.ping(), PING_AGAIN, (DependencyError,), within=within)

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
        serverSelectionTimeoutMS=int(SELECTION_TIMEOUT * 1000),
        connectTimeoutMS=int(CONNECT_TIMEOUT * 1000), socketTimeoutMS=int(SOCKET_TIMEOUT * 1000),
    )
    try:
        store = Store(client, client[settings.mongo_db], settings.mongo_url)
        await store.wait_until_up(START_TIMEOUT)
        await store.ensure_indexes(settings.log_retention_days)
        yield store
    finally:
        await client.close()
