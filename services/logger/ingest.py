"""Storing log entries in batches: one unordered `insert_many` per batch. A redelivered
entry hits the unique (job, task, attempt, seq) index and is dropped; the rest of the batch
is stored regardless, since the insert is unordered."""

from __future__ import annotations

from typing import Any

from pymongo.errors import BulkWriteError

from shared.messages import LogEntry, Message
from shared.store import Document, Store

DUPLICATE_KEY = 11000
SEQ_SPAN = 2**32


def position(attempt: int, seq: int) -> int:
    """One sortable number per entry of a task: attempts in order, lines in order."""
    return attempt * SEQ_SPAN + seq


def entry_document(entry: LogEntry) -> Document:
    return {
        "job_id": entry.job_id,
        "task_id": entry.task_id,
        "attempt": entry.attempt,
        "seq": entry.seq,
        "position": position(entry.attempt, entry.seq),
        "timestamp": entry.timestamp,
        "level": entry.level,
        "message": entry.message,
    }


class LogWriter:
    def __init__(self, store: Store) -> None:
        self.store = store
        self.stored = 0

    async def write(self, messages: list[Message]) -> None:
        entries = [m for m in messages if isinstance(m, LogEntry)]
        try:
            result = await self.store.logs.insert_many(
                [entry_document(entry) for entry in entries], ordered=False
            )
            self.stored += len(result.inserted_ids)
        except BulkWriteError as exc:
            details: dict[str, Any] = dict(exc.details)
            others = [e for e in details.get("writeErrors", []) if e.get("code") != DUPLICATE_KEY]
            if others:
                raise
            self.stored += int(details.get("nInserted", 0))
