"""Storing log entries; a redelivered entry hits the unique identity index and is dropped."""

from __future__ import annotations

from pymongo.errors import DuplicateKeyError

from shared.consumer import Delivery
from shared.errors import PermanentError
from shared.messages import LogEntry
from shared.store import Store


def entry_document(entry: LogEntry) -> dict[str, object]:
    return {
        "job_id": entry.job_id,
        "task_id": entry.task_id,
        "attempt": entry.attempt,
        "seq": entry.seq,
        "timestamp": entry.timestamp,
        "level": entry.level,
        "message": entry.message,
    }


class LogWriter:
    def __init__(self, store: Store) -> None:
        self.store = store

    async def on_entry(self, delivery: Delivery) -> None:
        entry = delivery.message
        if not isinstance(entry, LogEntry):
            raise PermanentError(f"{entry.type} does not belong on the log queue")
        try:
            await self.store.logs.insert_one(entry_document(entry))
        except DuplicateKeyError:
            return
