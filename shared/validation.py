"""Validating a submitted job as a whole: its shape, each tool's parameters and its region.
The gateway, the scheduler (for produced jobs) and `conveyor publish` share this."""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from shared.errors import ConveyorError
from shared.jobspec import JobSpec
from shared.nesting import first_field
from shared.toolspecs import field_errors, task_parameter_errors

FieldErrors = list[dict[str, str]]
# No tool takes more; a cap checked before the tool's schema, which would otherwise report
# (slowly) each of a hundred thousand unknown keys.
MAX_PARAMETERS = 100
# The longest string a job holds (a URL, a log message): every string is scanned for
# secrets when it is stored and when it is shown, and this keeps each scan short.
MAX_STRING = 65_536
# Errors listed in one answer: the first ones say what to fix.
MAX_ERRORS = 50


class InvalidJob(ConveyorError):
    def __init__(self, errors: FieldErrors) -> None:
        if len(errors) > MAX_ERRORS:
            errors = [*errors[:MAX_ERRORS],
                      {"field": "body", "message": f"and {len(errors) - MAX_ERRORS} more errors"}]
        super().__init__("; ".join(f"{e['field']}: {e['message']}" for e in errors))
        self.errors = errors


def region_errors(region: str | None, regions: list[str], field: str = "region") -> FieldErrors:
    if region is None or region in regions:
        return []
    return [{"field": field,
             "message": f"unknown region {region!r}; known regions: {', '.join(regions)}"}]


def validate_job(payload: Any, regions: list[str]) -> JobSpec:
    """The job in `payload`, or `InvalidJob` listing every field at fault and why."""
    if not isinstance(payload, dict):
        raise InvalidJob([{"field": "body", "message": "must be a JSON object with 'tasks'"}])
    try:
        spec = JobSpec.model_validate(payload)
    except ValidationError as exc:
        raise InvalidJob(field_errors(exc, "")) from None
    crowded = [{"field": f"tasks.{index}.parameters",
                "message": f"has {len(task.parameters)} keys; no tool takes more than "
                           f"{MAX_PARAMETERS}"}
               for index, task in enumerate(spec.tasks) if len(task.parameters) > MAX_PARAMETERS]
    if crowded:
        raise InvalidJob(crowded)
    long = first_field([{"parameters": task.parameters} for task in spec.tasks],
                       lambda text: len(text) > MAX_STRING)
    if long is not None:
        raise InvalidJob([{"field": f"tasks.{long}",
                           "message": f"is longer than {MAX_STRING} characters"}])
    errors = task_parameter_errors(spec) + region_errors(spec.region, regions)
    if errors:
        raise InvalidJob(errors)
    return spec
