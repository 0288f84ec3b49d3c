"""The lines a GATE Cloud-style job's own log (§9) holds beside its tasks' lines: what its
API did (created, started, stopped, reset, results deleted).

They reach the logs collection the way a worker's lines do, as messages to the logger, its
one writer: task 0 (SYSTEM_TASK), attempt 1, numbered by the microsecond, so the job log
(newest first by time) shows them among its tasks' lines as before, and a redelivered line
is a harmless duplicate. A line the broker does not take is lost, with a warning: the change
it reports stands."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import structlog

from services.gateway.outbox import FAILURES
from shared.broker import Publisher
from shared.messages import LogEntry, LogLevel
from shared.topology import LOGS_EXCHANGE

log = structlog.get_logger(__name__)
SYSTEM_TASK = 0
# Log messages name an attempt from 1; the API's own lines are all of one.
SYSTEM_ATTEMPT = 1
# Routed as a region's workers' lines are (`log.<region>`); the logger takes `log.#`.
ROUTING_KEY = "log.gateway"
SEND_TIMEOUT = 5.0


def entry(job_id: str, message: str, level: LogLevel, now: datetime) -> LogEntry:
    return LogEntry(job_id=job_id, task_id=SYSTEM_TASK, attempt=SYSTEM_ATTEMPT,
                    seq=int(now.timestamp() * 1_000_000), timestamp=now, level=level,
                    message=message)


async def log_event(publisher: Publisher, job_id: str, message: str,
                    level: LogLevel = "info") -> None:
    """Send one line of the job's log to the logger."""
    line = entry(job_id, message, level, datetime.now(UTC))
    try:
        await asyncio.wait_for(publisher.publish(LOGS_EXCHANGE, ROUTING_KEY, line),
                               SEND_TIMEOUT)
    except FAILURES as exc:
        log.warning("a line of the job log was not sent: the broker is unavailable",
                    job_id=job_id, line=message, error=str(exc) or type(exc).__name__)
