"""Jobs as stored: statuses, the job document the gateway creates (and the scheduler, for a
job that arrived straight from a producer), and what may be shown of its parameters."""

from __future__ import annotations

import secrets
from datetime import datetime
from enum import IntEnum
from typing import TYPE_CHECKING, Any

from shared.jobspec import JobSpec
from shared.redaction import REDACTED, redact, redact_text, secret_values
from shared.secrets import Sealer

if TYPE_CHECKING:  # the alias only: loading the store would load PyMongo into the worker
    from shared.store import Document

__all__ = ["REDACTED", "redact", "redact_text", "secret_values"]  # shown by shared.redaction
JOB_ID_LENGTH = 11


class Status(IntEnum):
    """Shared by jobs and tasks; the seed's numbers (task 2 Completed, job 3 Failed)."""

    QUEUED = 0
    RUNNING = 1
    COMPLETED = 2
    FAILED = 3
    CANCELLED = 4
    # Reserved: the API's vocabulary (design.md) has it, so a client may filter on it, but
    # nothing holds a job in this release (no quota or credit), so nothing sets it.
    SUSPENDED = 5

    @property
    def text(self) -> str:
        return self.name.capitalize()

    @property
    def is_final(self) -> bool:
        return self in FINAL


FINAL = frozenset({Status.COMPLETED, Status.FAILED, Status.CANCELLED})


def parse_status(value: str) -> Status:
    """A status by number or by name (`2`, `completed`, `Completed`)."""
    by_number = {str(status.value): status for status in Status}
    if value in by_number:
        return by_number[value]
    try:
        return Status[value.upper()]
    except KeyError:
        names = ", ".join(f"{s.value} ({s.text})" for s in Status)
        raise ValueError(f"unknown status {value!r}; use one of {names}") from None


def new_job_id() -> str:
    """11 URL-safe characters, like the seed's `abcDEFGHIjk`, starting with a letter or digit:
    an id starting with `-` would be read as an option by the `conveyor` commands (and by
    most other command lines) that take it."""
    while True:
        job_id = secrets.token_urlsafe(8)[:JOB_ID_LENGTH]
        if job_id[0].isalnum():
            return job_id


def workspace_prefix(job_id: str) -> str:
    return f"jobs/{job_id}/"


def output_prefix(job_id: str) -> str:
    return f"outputs/{job_id}/"


def task_key(task_id: int) -> str:
    """Tasks are stored as an object keyed `t<id>`, not an array: updates then address a task
    by a plain dotted path (`tasks.t2.status`), which every MongoDB-protocol server supports,
    while positional array paths are not (nx-27017 ignores them)."""
    return f"t{task_id}"


def task_path(task_id: int, field: str) -> str:
    return f"tasks.{task_key(task_id)}.{field}"


def ordered_tasks(job: Document) -> list[Document]:
    return sorted(job["tasks"].values(), key=lambda task: int(task["id"]))


def cancellation(job: Document) -> tuple[Document, Document, dict[int, int]]:
    """Stopping `job` as read: the condition (its status, and every task's status and
    attempt as read, so a task that ends or is dispatched meanwhile is never overwritten),
    the `$set` that cancels it and its unfinished tasks, and each task's attempt (what a
    worker's stop is fenced by)."""
    condition: Document = {"_id": job["_id"], "status": job["status"]}
    changes: Document = {"status": int(Status.CANCELLED)}
    for task in ordered_tasks(job):
        condition[task_path(task["id"], "status")] = task["status"]
        condition[task_path(task["id"], "attempt")] = task["attempt"]
        if not Status(task["status"]).is_final:
            changes[task_path(task["id"], "status")] = int(Status.CANCELLED)
            changes[task_path(task["id"], "error")] = {
                "class": "Cancelled", "message": "stopped on request"}
    return condition, changes, {task["id"]: task["attempt"] for task in ordered_tasks(job)}


def new_task(task_id: int, tool: str, parameters: dict[str, Any]) -> Document:
    return {
        "id": task_id,
        "tool": tool,
        "parameters": parameters,
        "status": int(Status.QUEUED),
        "progress": 0.0,
        # `attempt` only grows (it fences late messages of earlier attempts, across restarts
        # too); `attempt_base` is where the current run started, so attempts = the difference.
        "attempt": 0,
        "attempt_base": 0,
        # 0 or 1, not a boolean: some MongoDB-protocol servers store a boolean set through a
        # dotted path as an integer, and a filter on False would then miss it.
        "dispatched": 0,
        "error": None,
        "outputs": [],
        "result": {},
        "metrics": {},
        "worker": None,
        "started": None,
        "finished": None,
    }


def new_job_document(
    job_id: str,
    spec: JobSpec,
    *,
    region: str,
    organization_id: str | None,
    organization: str | None,
    user_id: str | None,
    user: str | None,
    job_bundle_id: str | None,
    job_bundle: str | None,
    now: datetime,
    sealer: Sealer | None = None,
) -> Document:
    """The job as first stored; the same code serves the gateway and the scheduler. With a
    `sealer`, every secret in the specification is stored (and dispatched) sealed."""
    stored = spec.model_dump(mode="json")
    if sealer is not None:
        stored = sealer.seal(stored)
    return {
        "_id": job_id,
        "spec": stored,
        "tasks": {
            task_key(index + 1): new_task(index + 1, task["tool"], task["parameters"])
            for index, task in enumerate(stored["tasks"])
        },
        "status": int(Status.QUEUED),
        "region": region,
        "tags": list(stored["tags"]),
        "notify": stored["notify"],
        "notified": None,
        "organization_id": organization_id,
        "organization": organization,
        "user_id": user_id,
        "user": user,
        "job_bundle_id": job_bundle_id,
        "job_bundle": job_bundle,
        "runs": 1,
        "created": now,
        "modified": now,
        "finished": None,
    }
