import pytest
from pydantic import ValidationError

from shared.jobs import new_job_id
from shared.jobspec import JobSpec, TaskSpec


def test_parameters_list_of_pairs_becomes_object() -> None:
    task = TaskSpec.model_validate({"tool": "storage:get", "parameters": [
        {"name": "url", "value": "s3://b/k"}, {"name": "retries", "value": 2}]})
    assert task.parameters == {"url": "s3://b/k", "retries": 2}


def test_parameters_list_of_one_key_objects_becomes_object() -> None:
    task = TaskSpec.model_validate({"tool": "storage:get", "parameters": [{"url": "x"}]})
    assert task.parameters == {"url": "x"}


@pytest.mark.parametrize(
    ("payload", "fragment"),
    [
        ({"tool": "Storage Get"}, "must look like 'namespace:name'"),
        ({"tool": "storage:get", "parameters": [1]}, "item 0 must be"),
        ({"tool": "storage:get", "parameters": [{"a": 1}, {"a": 2}]}, "twice"),
        ({"tool": "storage:get", "parameters": "x"}, "valid dictionary"),
        ({"tool": "storage:get", "extra": 1}, "Extra inputs are not permitted"),
    ],
)
def test_bad_tasks_are_rejected(payload: dict[str, object], fragment: str) -> None:
    with pytest.raises(ValidationError) as caught:
        TaskSpec.model_validate(payload)
    assert fragment in str(caught.value)


def test_job_needs_tasks_and_sane_tags() -> None:
    with pytest.raises(ValidationError, match="at least 1 item"):
        JobSpec.model_validate({"tasks": []})
    with pytest.raises(ValidationError, match="each tag"):
        JobSpec.model_validate({"tasks": [{"tool": "a:b"}], "tags": [" "]})


def test_job_ids_never_start_with_a_dash_or_underscore() -> None:
    """A `-` first would make `conveyor logs ID` read the id as an option (1 id in 64 did);
    `_` is left out of first place too."""
    ids = [new_job_id() for _ in range(5000)]
    assert all(len(job_id) == 11 for job_id in ids)
    assert all(job_id[0].isalnum() for job_id in ids)
    assert any("-" in job_id or "_" in job_id for job_id in ids), "still URL-safe base64"
    assert len(set(ids)) == len(ids)
