"""What a tool gets to do its work: scratch space, the job workspace, a logger whose entries
reach the log service, a progress reporter, and a place for outputs, result and metrics."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import mimetypes
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from minio.error import S3Error

from shared.broker import CONNECTION_ERRORS, Publisher
from shared.errors import PermanentError
from shared.messages import LogBatch, LogLine, TaskOutput, TaskProgress
from shared.objects import ObjectStore
from shared.redaction import redact_text
from shared.settings import Settings
from shared.topology import EVENTS_EXCHANGE, LOGS_EXCHANGE

# Progress events are coalesced: at most one a second per task, and always the last one.
PROGRESS_INTERVAL = 1.0
MAX_UNSENT_LINES = 1000
LOG_BATCH_LINES = 100
LOG_FLUSH_SECONDS = 0.1


def guess_type(path: Path) -> str:
    return mimetypes.guess_type(path.name)[0] or "application/octet-stream"


class ToolError(PermanentError):
    """A tool failed in a way another attempt cannot fix; the message is shown to the user."""


@dataclass
class ToolContext:
    job_id: str
    task_id: int
    attempt: int
    region: str
    workspace: str
    scratch: Path
    objects: ObjectStore
    publisher: Publisher
    settings: Settings
    secrets: list[str] = field(default_factory=list)
    outputs: list[TaskOutput] = field(default_factory=list)
    result: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)
    _seq: itertools.count[int] = field(default_factory=itertools.count)
    _last_progress: float = 0.0
    _unsent: list[LogLine] = field(default_factory=list)
    _flusher: asyncio.Task[None] | None = None
    _flushing: asyncio.Lock = field(default_factory=asyncio.Lock)
    percent: float = 0.0

    def _ref(self) -> dict[str, Any]:
        return {"job_id": self.job_id, "task_id": self.task_id, "attempt": self.attempt}

    def redact(self, text: str) -> str:
        return redact_text(text, self.secrets)

    async def log(
        self, message: str, level: Literal["debug", "info", "warning", "error"] = "info"
    ) -> None:
        """One line of the task's log, with any credential of the task masked. Lines go out
        together, up to LOG_BATCH_LINES a message or after LOG_FLUSH_SECONDS; while the
        broker is unreachable they wait here (up to a bound)."""
        self._unsent.append(LogLine(seq=next(self._seq), timestamp=datetime.now(UTC),
                                    level=level, message=self.redact(message)[:65536]))
        if len(self._unsent) >= LOG_BATCH_LINES:
            await self.flush_logs()
        elif self._flusher is None:
            self._flusher = asyncio.create_task(self._flush_soon())

    async def _flush_soon(self) -> None:
        await asyncio.sleep(LOG_FLUSH_SECONDS)
        self._flusher = None
        await self.flush_logs()

    async def flush_logs(self) -> None:
        async with self._flushing:
            try:
                while self._unsent:
                    lines = self._unsent[:LOG_BATCH_LINES]
                    await self.publisher.publish(LOGS_EXCHANGE, f"log.{self.region}",
                                                 LogBatch(**self._ref(), lines=lines))
                    del self._unsent[:len(lines)]
            except CONNECTION_ERRORS:
                del self._unsent[:-MAX_UNSENT_LINES]

    async def close(self) -> None:
        """Send what the log holds (before the task's outcome is reported)."""
        if self._flusher is not None:
            self._flusher.cancel()
            self._flusher = None
        await self.flush_logs()

    async def progress(self, percent: float, *, force: bool = False) -> None:
        self.percent = max(0.0, min(100.0, percent))
        now = time.monotonic()
        if not force and now - self._last_progress < PROGRESS_INTERVAL:
            return
        await self.beat()

    async def beat(self) -> None:
        """Report the current progress now: also the heartbeat that says the task lives. A
        beat lost to a broker outage is not retried: the next one says the same."""
        self._last_progress = time.monotonic()
        with contextlib.suppress(*CONNECTION_ERRORS):
            await self.publisher.publish(EVENTS_EXCHANGE, "task.progress", TaskProgress(
                **self._ref(), progress=self.percent,
            ))

    def add_output(self, key: str, size: int, bucket: str | None = None) -> None:
        self.outputs.append(TaskOutput(path=key, size=size, bucket=bucket))

    def count(self, metric: str, amount: float) -> None:
        self.metrics[metric] = self.metrics.get(metric, 0.0) + amount

    def media(self, direction: str, key: str, seconds: float) -> None:
        """Seconds of media read (`in`) or written (`out`), per object: the job's metrics
        count each object once, however many tasks read it."""
        self.metrics[f"media_{direction}:{key}"] = seconds

    async def fetch(self, path: str) -> Path:
        """A workspace file in the scratch directory (paths are relative to the workspace)."""
        local = self.scratch / "in" / path
        local.parent.mkdir(parents=True, exist_ok=True)
        try:
            await self.objects.download_file(self.workspace + path, local)
        except S3Error as exc:
            if exc.code == "NoSuchKey":
                raise ToolError(f"no file {path!r} in the job workspace") from None
            raise
        return local

    async def store(self, local: Path, path: str, content_type: str | None = None) -> int:
        """Put a scratch file into the workspace as `path`; it becomes an output."""
        size = await self.objects.upload_file(
            self.workspace + path, local, content_type or guess_type(local))
        self.add_output(self.workspace + path, size)
        return size
