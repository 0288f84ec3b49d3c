"""POSTs a finished job's JSON to its `notify` URL, once: the job is claimed for notification
with a conditional update before the first try, so replicas and redeliveries never send it
twice. Sending runs in tasks this notifier owns, so a slow receiver never holds a consumer."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import aiohttp
import structlog
from yarl import URL

from shared.errors import PermanentError, TransientError
from shared.jobview import render_job
from shared.netguard import ForbiddenAddressError, GuardedResolver, check_url
from shared.objects import ObjectStore
from shared.retry import RetryPolicy, retrying
from shared.secrets import sealer_for
from shared.settings import Settings
from shared.store import Document, Store

log = structlog.get_logger(__name__)
# Four tries, 1 s, 2 s and 4 s apart: a receiver restarting is waited for, one that is gone
# does not hold a task for long.
NOTIFY_RETRY = RetryPolicy(max_attempts=4, base_delay=1.0, max_delay=4.0, jitter=0.0)


class NotDelivered(TransientError):
    """A try that may succeed later (no answer, or a 5xx or 429)."""

    def __init__(self, error: str, attempt: int) -> None:
        super().__init__(error)
        self.error = error
        self.attempt = attempt


def failed(error: str, attempts: int) -> Document:
    return {"state": "failed", "error": error, "attempts": attempts}


def public_base_url(settings: Settings) -> str:
    return settings.public_url or f"http://{settings.bind_host}:{settings.gateway_port}"


class Notifier:
    def __init__(self, store: Store, objects: ObjectStore, settings: Settings) -> None:
        self.store = store
        self.objects = objects
        self.settings = settings
        self._tasks: set[asyncio.Task[None]] = set()

    async def job_finished(self, job: Document) -> None:
        if not job.get("notify"):
            return
        claimed = await self.store.jobs.find_one_and_update(
            {"_id": job["_id"], "notified": None},
            {"$set": {"notified": {"state": "sending", "at": datetime.now(UTC)}}},
        )
        if claimed is None:
            return
        task = asyncio.create_task(self._send(job))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _send(self, job: Document) -> None:
        structlog.contextvars.bind_contextvars(job_id=job["_id"])
        body = await render_job(job, public_base_url(self.settings), self.objects)
        allow = self.settings.allow_private_networks
        outcome: Document
        try:
            url = URL(sealer_for(self.settings).open(job["notify"]))
            check_url(url, allow)
            outcome = await self._post(url, body, allow)
        except (PermanentError, ValueError) as exc:
            outcome = {"state": "failed", "error": str(exc)}
        outcome["at"] = datetime.now(UTC)
        await self.store.jobs.update_one({"_id": job["_id"]}, {"$set": {"notified": outcome}})
        log.info("notification", **{k: v for k, v in outcome.items() if k != "at"})

    async def _post(self, url: URL, body: Document, allow: bool) -> Document:
        connector = aiohttp.TCPConnector(resolver=GuardedResolver(allow))
        timeout = aiohttp.ClientTimeout(total=30)
        async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:

            async def post(attempt: int) -> Document:
                try:
                    async with session.post(url, json=body, allow_redirects=False) as response:
                        if response.status < 300:
                            return {"state": "sent", "status_code": response.status,
                                    "attempts": attempt}
                        error = f"answered {response.status}"
                        if 400 <= response.status < 500 and response.status != 429:
                            return failed(error, attempt)  # the receiver refused it
                except aiohttp.ClientConnectorError as exc:
                    if isinstance(exc.os_error, ForbiddenAddressError):
                        return failed(str(exc.os_error), attempt)
                    error = str(exc.os_error)
                except (aiohttp.ClientError, TimeoutError) as exc:
                    error = f"{type(exc).__name__}: {exc}"
                raise NotDelivered(error, attempt)

            try:
                return await retrying(post, NOTIFY_RETRY, (NotDelivered,))
            except NotDelivered as exc:
                return failed(exc.error, exc.attempt)

    async def close(self, grace: float) -> None:
        """Let notifications under way finish within `grace`, then cancel them."""
        if not self._tasks:
            return
        _, pending = await asyncio.wait(set(self._tasks), timeout=grace)
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
