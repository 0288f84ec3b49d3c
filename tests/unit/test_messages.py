import json
from datetime import UTC, datetime

import pytest

from shared.errors import MessageError
from shared.jobspec import JobSpec
from shared.messages import (
    JobControl,
    JobSubmitted,
    LogEntry,
    TaskDispatch,
    TaskFailed,
    decode,
    json_schema,
)


def test_job_submitted_round_trip() -> None:
    spec = JobSpec.model_validate(
        {"tasks": [{"tool": "storage:get", "parameters": {"url": "s3://b/k"}}], "tags": ["a"]}
    )
    message = JobSubmitted(job_id="abcDEFGHIjk", spec=spec, organization_id="org")
    decoded = decode(message.encode())
    assert decoded == message
    assert decoded.created_at.tzinfo is not None


def test_envelope_fields_are_filled() -> None:
    body = json.loads(TaskDispatch(job_id="j", task_id=0, attempt=1, region="local",
                                   tool="debug:sleep", workspace="jobs/j/").encode())
    assert {"message_id", "created_at", "schema_version", "type"} <= set(body)
    assert body["schema_version"] == 1
    assert body["type"] == "task.dispatch"


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        (b"not json", "Invalid JSON"),
        (b'{"type": "job.unknown"}', "does not match any of the expected tags"),
        (b'{"type": "job.submitted", "job_id": "x"}', "spec: Field required"),
        (b'{"type": "task.dispatch", "job_id": "j", "task_id": -1, "attempt": 1, '
         b'"region": "r", "tool": "a:b", "workspace": "w"}', "task_id: Input should be greater"),
        (b'{"type": "job.submitted", "job_id": "x", "spec": {"tasks": []}}', "tasks"),
        # Nothing suspends a job, so there is no suspend or resume to ask for.
        (b'{"type": "job.control", "job_id": "j", "action": "suspend"}', "action: Input should"),
        (b'{"type": "job.control", "job_id": "j", "action": "resume"}', "action: Input should"),
        (b'{"type": "job.control", "job_id": "j", "action": "stop", "run": 0}',
         "run: Input should be greater than or equal to 1"),
        (b'{"type": "job.control", "job_id": "j", "action": "stop", "run": "two"}',
         "run: Input should be a valid integer"),
    ],
)
def test_invalid_messages_say_what_is_wrong(body: bytes, fragment: str) -> None:
    with pytest.raises(MessageError) as caught:
        decode(body)
    assert fragment in str(caught.value)


def test_a_stop_names_its_run_and_still_reads_an_older_one() -> None:
    stop = JobControl(job_id="j", action="stop", run=2, requested_by="u")
    assert decode(stop.encode()) == stop
    # As an earlier release wrote it into a job's outbox: with attempts, without a run.
    older = decode(b'{"type": "job.control", "job_id": "j", "action": "stop", '
                   b'"attempts": {"1": 3}}')
    assert isinstance(older, JobControl)
    assert older.run is None


def test_log_entry_and_failure_models() -> None:
    entry = LogEntry(job_id="j", task_id=1, attempt=2, seq=5, timestamp=datetime.now(UTC),
                     message="hello")
    assert decode(entry.encode()) == entry
    failed = TaskFailed.model_validate({"job_id": "j", "task_id": 0, "attempt": 1,
                                        "error": {"error_class": "X", "message": "m"}})
    assert decode(failed.encode()) == failed


def test_schema_covers_every_message_type() -> None:
    schema = json.dumps(json_schema())
    for kind in ("job.submitted", "job.control", "task.dispatch", "task.started",
                 "task.progress", "task.succeeded", "task.failed", "log.entry",
                 "control.cancel"):
        assert f'"{kind}"' in schema
