"""The message contract: one frozen model per message type over a common envelope.

Every body is JSON with `message_id`, `created_at` (UTC), `schema_version` and `type`; the
`type` selects the model. `decode()` is the one way in, so the scheduler validates a message
from an internal producer with exactly the code that validates the gateway's.
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from shared.errors import MessageError
from shared.jobspec import JobSpec

LogLevel = Literal["debug", "info", "warning", "error"]


def _now() -> datetime:
    return datetime.now(UTC)


class Envelope(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    message_id: uuid.UUID = Field(default_factory=uuid.uuid4)
    created_at: datetime = Field(default_factory=_now)
    schema_version: Literal[1] = 1

    def encode(self) -> bytes:
        return self.model_dump_json().encode()


class JobSubmitted(Envelope):
    """A new job: published by the gateway after it stored the job, or by a producer."""

    type: Literal["job.submitted"] = "job.submitted"
    job_id: str = Field(min_length=1, max_length=64)
    spec: JobSpec
    organization_id: str | None = None
    user_id: str | None = None


class JobControl(Envelope):
    """A user's request to change a job's course. `stop`: the scheduler cancels the job if it
    is still Queued or Running and tells the workers to interrupt its task; `restart`: the
    gateway reset a finished job, which the scheduler now runs. (No `suspend`/`resume`:
    nothing holds a job, so they would only be dead-lettered.)"""

    type: Literal["job.control"] = "job.control"
    job_id: str = Field(min_length=1, max_length=64)
    action: Literal["stop", "restart"]
    requested_by: str | None = None
    run: int | None = Field(
        default=None, ge=1,
        description="stop: the run (the job's `runs` when the stop was asked) it stops; a "
                    "later run, after a restart, is left alone (none: whatever run is on)",
    )
    attempts: dict[int, int] = Field(
        default_factory=dict,
        description="ignored, kept so that messages of earlier releases still decode: the "
                    "scheduler fences the workers' `control.cancel` with the attempts it "
                    "cancels",
    )


class TaskRef(Envelope):
    """Fields naming one attempt of one task: the fencing token of every task message."""

    job_id: str = Field(min_length=1, max_length=64)
    task_id: int = Field(ge=0)
    attempt: int = Field(ge=1)


class TaskDispatch(TaskRef):
    """Run one task: routed to `tasks.<region>`."""

    type: Literal["task.dispatch"] = "task.dispatch"
    region: str
    tool: str
    parameters: dict[str, Any] = Field(default_factory=dict)
    workspace: str = Field(description="S3 prefix of the job's workspace, e.g. jobs/<id>/")


class TaskStarted(TaskRef):
    type: Literal["task.started"] = "task.started"
    worker_id: str


class TaskProgress(TaskRef):
    type: Literal["task.progress"] = "task.progress"
    progress: float = Field(ge=0, le=100)


class TaskOutput(BaseModel):
    """An object a task wrote: a key in the platform's bucket, or in `bucket` elsewhere."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    path: str
    size: int = Field(ge=0)
    bucket: str | None = None


class TaskSucceeded(TaskRef):
    type: Literal["task.succeeded"] = "task.succeeded"
    outputs: list[TaskOutput] = Field(default_factory=list)
    result: dict[str, Any] = Field(default_factory=dict)
    metrics: dict[str, float] = Field(default_factory=dict)


class TaskError(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    error_class: str
    message: str


class TaskFailed(TaskRef):
    type: Literal["task.failed"] = "task.failed"
    error: TaskError
    retryable: bool = False


class LogEntry(TaskRef):
    """One line of a task's log; (job, task, attempt, seq) makes a redelivery harmless."""

    type: Literal["log.entry"] = "log.entry"
    seq: int = Field(ge=0)
    timestamp: datetime
    level: LogLevel = "info"
    message: str = Field(max_length=65536)


class LogLine(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    seq: int = Field(ge=0)
    timestamp: datetime
    level: LogLevel = "info"
    message: str = Field(max_length=65536)


class LogBatch(TaskRef):
    """Several lines of one task's log in one message: what workers send, since a message
    costs the broker and its clients far more than a line."""

    type: Literal["log.batch"] = "log.batch"
    lines: list[LogLine] = Field(min_length=1, max_length=1000)


class CancelTask(Envelope):
    """Fanned out to every worker: stop this task if you are running it."""

    type: Literal["control.cancel"] = "control.cancel"
    job_id: str
    task_id: int | None = None
    attempts: dict[int, int] = Field(
        default_factory=dict,
        description="each task's latest attempt when the job was stopped: a dispatch at or "
                    "below it belongs to the stopped run, a later one to a rerun (empty: "
                    "every dispatch of the job is refused for a while)",
    )
    worker_id: str | None = Field(
        default=None,
        description="only this worker acts on it, and only on the attempts named: it runs a "
                    "start the scheduler did not accept (a duplicate dispatch, or an attempt "
                    "given up), which stops without reporting anything",
    )


Message = Annotated[
    JobSubmitted
    | JobControl
    | TaskDispatch
    | TaskStarted
    | TaskProgress
    | TaskSucceeded
    | TaskFailed
    | LogEntry
    | LogBatch
    | CancelTask,
    Field(discriminator="type"),
]
_ADAPTER: TypeAdapter[Message] = TypeAdapter(Message)


def decode(body: bytes) -> Message:
    """Parse and validate a message body, or raise `MessageError` saying what is wrong."""
    try:
        return _ADAPTER.validate_json(body)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or 'body'}: {err['msg']}"
            for err in exc.errors()[:5]
        )
        raise MessageError(f"invalid message: {problems}") from None


def json_schema() -> dict[str, Any]:
    """The JSON Schema of every message, for producers written in other languages."""
    return _ADAPTER.json_schema()


def dump_schema() -> str:
    return json.dumps(json_schema(), indent=2, sort_keys=True) + "\n"
