"""Storing log entries in batches: one unordered `insert_many` per batch. A redelivered
entry hits the unique (job, task, attempt, seq) index and is dropped; the rest of the batch
is stored regardless, since the insert is unordered."""

from __future__ import annotations

from typing import Any

from pymongo.errors import BulkWriteError

from shared.messages import LogBatch, LogEntry, LogLine, Message
from shared.redaction import mask_text
from shared.store import Document, Store

DUPLICATE_KEY = 11000
SEQ_SPAN = 2**32


def position(attempt: int, seq: int) -> int:
    """One sortable number per entry of a task: attempts in order, lines in order."""
    return attempt * SEQ_SPAN + seq


def entry_document(entry: LogEntry | LogBatch, line: LogEntry | LogLine) -> Document:
    return {
        "job_id": entry.job_id,
        "task_id": entry.task_id,
        "attempt": entry.attempt,
        "seq": line.seq,
        "position": position(entry.attempt, line.seq),
        "timestamp": line.timestamp,
        "level": line.level,
        # Masked here too: not every writer of log lines is a worker that masks its own.
        "message": mask_text(line.message),
    }


def documents(messages: list[Message]) -> list[Document]:
    """One document per log line, whether it came alone or in a batch."""
    found: list[Document] = []
    for message in messages:
        if isinstance(message, LogEntry):
            found.append(entry_document(message, message))
        elif isinstance(message, LogBatch):
            found.extend(entry_document(message, line) for line in message.lines)
    return found


class LogWriter:
    def __init__(self, store: Store, chunk: int) -> None:
        self.store = store
        self.chunk = chunk
        self.stored = 0

    async def write(self, messages: list[Message]) -> None:
        """Store every line of `messages`, `chunk` documents an insert."""
        rows = documents(messages)
        for start in range(0, len(rows), self.chunk):
            await self._insert(rows[start:start + self.chunk])

    async def _insert(self, rows: list[Document]) -> None:
        try:
            result = await self.store.logs.insert_many(rows, ordered=False)
            self.stored += len(result.inserted_ids)
        except BulkWriteError as exc:
            details: dict[str, Any] = dict(exc.details)
            others = [e for e in details.get("writeErrors", []) if e.get("code") != DUPLICATE_KEY]
            if others:
                raise
            self.stored += int(details.get("nInserted", 0))
