"""Finds the tasks that a fault left behind and has them carried on. Runs beside the
consumers, in every scheduler replica: each step ends in a conditional update, so two
sweepers never act on one task twice.

- A running task whose worker is gone (its control queue has not existed for
  `worker_lost_seconds`): tried again as a new attempt, within seconds of a worker's death.
- A running task not heard of for `task_silence_seconds` (a worker that froze, or lost on a
  host whose connection the broker has not yet closed): the same; but not until a whole
  silence period after the broker and the store were last away (no heartbeat could come).
- A dispatched task not started within `dispatch_timeout_seconds` while its region's queue
  holds nothing waiting (so the dispatch is not just queued behind others): sent again under
  the same attempt; a worker refuses a second start of one attempt."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import structlog

from services.scheduler.machine import ACTIVE, Machine
from services.scheduler.presence import Presence
from shared.broker import CONNECTION_ERRORS
from shared.clock import CLOCK, Clock
from shared.errors import DependencyError
from shared.jobs import Status
from shared.settings import Settings
from shared.store import UNREACHABLE

log = structlog.get_logger(__name__)
TICK = 1.0
BROKER_AWAY: tuple[type[BaseException], ...] = (*CONNECTION_ERRORS, DependencyError)


class Sweeper:
    """Its `tick` runs every TICK seconds (a `Periodic` the scheduler owns); each sweep runs
    in the ticks it is due in, one after another."""

    def __init__(self, machine: Machine, presence: Presence, settings: Settings,
                 clock: Clock = CLOCK) -> None:
        self.machine = machine
        self.presence = presence
        self.clock = clock
        self.silence = settings.task_silence_seconds
        self.dispatch_timeout = settings.dispatch_timeout_seconds
        self.lost_after = settings.worker_lost_seconds
        self._missing: dict[str, float] = {}  # worker -> when its queue was first missed
        self._rounds = {self.lost_workers: TICK, self.silent: max(TICK, self.silence / 4),
                        self.overdue: max(TICK, self.dispatch_timeout / 4)}
        self._due = dict.fromkeys(self._rounds, 0.0)
        # Heartbeats cannot arrive while the broker or the store is away: silence means
        # nothing until a whole silence period after both are back. Nor do the heartbeats
        # sent while no scheduler ran count: they are still queued.
        self._deaf_until = 0.0
        self._deaf()

    async def tick(self) -> None:
        if not self.presence.connection.connected.is_set():
            self._deaf()
        for step, interval in self._rounds.items():
            now = self.clock.now()
            if now < self._due[step]:
                continue
            self._due[step] = now + interval
            try:
                await step()
            except UNREACHABLE as exc:  # the consumers hold their messages meanwhile
                self._deaf()
                log.warning("sweep skipped: store unavailable", step=step.__name__,
                            error=str(exc).split(",")[0])
            except BROKER_AWAY as exc:
                self._deaf()
                log.warning("sweep skipped: broker unavailable", step=step.__name__,
                            error=str(exc) or type(exc).__name__)
            except Exception:  # the next round tries again; a sweep must not end the tick
                log.exception("sweep failed", step=step.__name__)

    def _deaf(self) -> None:
        self._deaf_until = self.clock.now() + self.silence

    async def lost_workers(self) -> int:
        """Give up the tasks of workers whose control queue stayed gone; returns how many."""
        workers = await self.machine.store.jobs.distinct(
            "running_worker", {"status": int(Status.RUNNING)})
        now = self.clock.now()
        try:
            missing = {w for w in workers if w and not await self.presence.worker_alive(w)}
        except BROKER_AWAY:
            # Blind while the broker is away (and every worker is reconnecting then): start
            # counting afresh once it is back.
            self._missing.clear()
            self._deaf()
            return 0
        self._missing = {w: self._missing.get(w, now) for w in missing}
        lost = [w for w, since in self._missing.items() if now - since >= self.lost_after]
        given_up = 0
        for worker in lost:
            jobs = await self.machine.store.jobs.find(
                {"status": int(Status.RUNNING), "running_worker": worker}).to_list()
            for job in jobs:
                await self.machine.give_up(
                    job, "WorkerLost", f"worker {worker} disconnected from the broker")
                given_up += 1
            self._missing.pop(worker, None)
        return given_up

    async def silent(self) -> int:
        """Give up running tasks not heard of for the silence period; returns how many."""
        if self.clock.now() < self._deaf_until:
            return 0
        cutoff = datetime.now(UTC) - timedelta(seconds=self.silence)
        jobs = await self.machine.store.jobs.find(
            {"status": int(Status.RUNNING), "heartbeat": {"$lt": cutoff}}).to_list()
        for job in jobs:
            await self.machine.give_up(
                job, "WorkerLost", f"no heartbeat from its worker for {self.silence:g} s")
        return len(jobs)

    async def overdue(self) -> int:
        """Send again the dispatches that seem lost; returns how many were sent."""
        cutoff = datetime.now(UTC) - timedelta(seconds=self.dispatch_timeout)
        jobs = []
        for status in ACTIVE:  # one equality each: nx-27017 answers `$in` with a range wrongly
            jobs += await self.machine.store.jobs.find(
                {"status": status, "waiting_since": {"$lt": cutoff}}).to_list()
        drained: dict[str, bool] = {}
        sent = 0
        for job in jobs:
            since: datetime = job["waiting_since"]
            since = since if since.tzinfo else since.replace(tzinfo=UTC)
            if since + timedelta(seconds=job.get("dispatch_delay") or 0) >= cutoff:
                continue  # a retry's dispatch, still waiting out its backoff
            region = job["region"]
            if region not in drained:
                drained[region] = await self.presence.waiting(region) == 0
            task = next((t for t in job["tasks"].values()
                         if t["status"] == int(Status.QUEUED) and t["dispatched"]), None)
            if drained[region] and task is not None:
                sent += await self.machine.resend(job, task["id"])
        return sent
