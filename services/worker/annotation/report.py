"""The summary report of an annotation run (seed §10): what was read, what failed and why."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from services.worker.annotation.documents import SourceDocument


@dataclass
class RunReport:
    documents_processed: int = 0
    documents_failed: list[tuple[str, str]] = field(default_factory=list)  # (name, reason)
    annotations_written: int = 0
    bytes_read: int = 0
    started: float = field(default_factory=time.monotonic)

    def processed(self, document: SourceDocument, annotations: int) -> None:
        """A document was annotated and `annotations` annotations were written for it."""
        self.documents_processed += 1
        self.annotations_written += annotations
        self.bytes_read += document.size

    def failed(self, name: str, reason: str, size: int = 0) -> None:
        self.documents_failed.append((name, reason))
        self.bytes_read += size

    def record(self, document: SourceDocument) -> bool:
        """Count a document that could not be read (True), or leave it to `processed`."""
        if document.error is None:
            return False
        self.failed(document.name, document.error, document.size)
        return True

    def to_json(self) -> dict[str, Any]:
        return {
            "documentsProcessed": self.documents_processed,
            "documentsFailed": len(self.documents_failed),
            "failures": [{"document": name, "reason": reason}
                         for name, reason in self.documents_failed],
            "annotationsWritten": self.annotations_written,
            "bytesRead": self.bytes_read,
            "seconds": round(time.monotonic() - self.started, 3),
        }
