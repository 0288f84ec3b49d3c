"""The job a client or an internal producer submits: an ordered list of tool tasks."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from shared.errors import ConveyorError

_TOOL = re.compile(r"^[a-z][a-z0-9_]*:[a-z][a-z0-9_]*$")
MAX_TASKS = 100
MAX_TAGS = 20


def parameters_as_object(value: Any) -> Any:
    """The seed shows `parameters` as a list in a job definition and as an object when a job
    is read back; accept a list of `{"name": n, "value": v}` pairs or of one-key objects."""
    if not isinstance(value, list):
        return value
    merged: dict[str, Any] = {}
    for index, item in enumerate(value):
        if isinstance(item, dict) and set(item) == {"name", "value"}:
            key, val = item["name"], item["value"]
        elif isinstance(item, dict) and len(item) == 1:
            ((key, val),) = item.items()
        else:
            raise ValueError(
                f"item {index} must be {{\"name\": ..., \"value\": ...}} or an object with one key"
            )
        if not isinstance(key, str) or key in merged:
            raise ValueError(f"item {index} names parameter {key!r} twice or not as a string")
        merged[key] = val
    return merged


class TaskSpec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    tool: str = Field(description="registered tool name, e.g. storage:get")
    parameters: dict[str, Any] = Field(default_factory=dict)

    @field_validator("tool")
    @classmethod
    def _tool_name(cls, value: str) -> str:
        if not _TOOL.match(value):
            raise ValueError("must look like 'namespace:name' (lowercase, e.g. storage:get)")
        return value

    @field_validator("parameters", mode="before")
    @classmethod
    def _parameters(cls, value: Any) -> Any:
        return parameters_as_object(value)


class JobSpec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    tasks: list[TaskSpec] = Field(min_length=1, max_length=MAX_TASKS)
    region: str | None = None
    tags: list[str] = Field(default_factory=list, max_length=MAX_TAGS)
    organization: str | None = None
    organization_id: str | int | None = None
    job_bundle: str | None = None
    job_bundle_id: str | int | None = None
    notify: str | None = None

    @field_validator("notify")
    @classmethod
    def _notify(cls, value: str | None) -> str | None:
        if value is not None and (
            not value.startswith(("http://", "https://")) or len(value) > 2048
        ):
            raise ValueError("must be an http:// or https:// URL of at most 2048 characters")
        return value

    @field_validator("tags")
    @classmethod
    def _tags(cls, value: list[str]) -> list[str]:
        for tag in value:
            if not tag.strip() or len(tag) > 100:
                raise ValueError("each tag must be 1-100 characters and not blank")
        return value


def read_job_file(path: Path) -> Any:
    """The JSON in a job file, or `ConveyorError` saying in one line what is wrong."""
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise ConveyorError(f"{path}: no such file") from None
    except OSError as exc:
        raise ConveyorError(f"{path}: {exc.strerror or exc}") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConveyorError(f"{path}: not valid JSON: {exc}") from None
