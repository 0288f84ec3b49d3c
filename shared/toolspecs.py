"""The registry of tools (`REGISTRY`): each tool's parameters as a typed model, its retry
policy, and whether only a facade schedules it. The gateway and the scheduler validate a job
against these before anything runs; the worker parses them again to run the tool."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Annotated, Literal

from pydantic import AfterValidator, Field, ValidationError, field_validator
from pydantic import model_validator as _model_validator

from shared.gate import GATE_API, Facade, GateAnnotate
from shared.jobspec import JobSpec
from shared.params import Credentials, Params, check_printable, split_s3_url
from shared.retry import RetryPolicy

MAX_PATH = 1024


def check_workspace_path(value: str, *, glob: bool = False) -> str:
    """A path inside the job's workspace: relative, with no `..`, no backslashes and no
    control characters."""
    if not value or len(value) > MAX_PATH:
        raise ValueError(f"must be 1-{MAX_PATH} characters")
    check_printable(value)
    if value.startswith("/") or "\\" in value:
        raise ValueError("must be a relative path inside the job workspace (no leading '/')")
    parts = value.split("/")
    if any(part in {"..", "."} for part in parts) or "" in parts[:-1]:
        raise ValueError("must not contain '.', '..' or empty path segments")
    if not glob and any(ch in value for ch in "*?["):
        raise ValueError("must not contain wildcards")
    return value


class StorageGet(Params):
    source: str = Field(description="http(s):// or s3://bucket/key")
    destination: str | None = Field(
        default=None, description="path in the job workspace; default: the source's file name"
    )
    credentials: Credentials | None = None

    @field_validator("source")
    @classmethod
    def _source(cls, value: str) -> str:
        if value.startswith("s3://"):
            bucket, key = split_s3_url(value)
            if not key or key.endswith("/"):
                raise ValueError("must name an object (s3://bucket/key), not a prefix")
        elif not value.startswith(("http://", "https://")):
            raise ValueError("must be an http://, https:// or s3:// URL")
        return check_printable(value)

    @field_validator("destination")
    @classmethod
    def _destination(cls, value: str | None) -> str | None:
        return None if value is None else check_workspace_path(value)


class StoragePut(Params):
    source: str = Field(description="workspace path or glob; ** matches across folders")
    destination: str | None = Field(
        default=None, description="s3://bucket/prefix/ (or a key for a single file); "
        "default: the platform's output area for the job",
    )
    credentials: Credentials | None = None

    @field_validator("source")
    @classmethod
    def _source(cls, value: str) -> str:
        return check_workspace_path(value, glob=True)

    @field_validator("destination")
    @classmethod
    def _destination(cls, value: str | None) -> str | None:
        if value is not None:
            split_s3_url(value)
        return value


class DebugSleep(Params):
    seconds: float = Field(default=0.0, ge=0, le=3600)


class DebugLog(Params):
    messages: list[str] = Field(min_length=1, max_length=1000)
    fail: bool = False

    @field_validator("messages")
    @classmethod
    def _lengths(cls, value: list[str]) -> list[str]:
        if any(len(message) > 65536 for message in value):
            raise ValueError("each message must be at most 65536 characters")
        return value


class DebugFail(Params):
    message: str = Field(default="failing on purpose", max_length=1000)
    transient: bool = Field(default=False, description="fail as a passing problem (retried)")
    attempts: int | None = Field(
        default=None, ge=1, le=100, description="fail only the first N attempts"
    )


_BITRATE = re.compile(r"^[1-9][0-9]*[kKmM]?$")
PRESETS = ("ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow",
           "slower", "veryslow")


WorkspacePath = Annotated[str, AfterValidator(check_workspace_path)]
WorkspaceFolder = Annotated[str, AfterValidator(lambda v: check_workspace_path(v.rstrip("/")))]


class MediaProbe(Params):
    source: WorkspacePath = Field(description="workspace path of a media file")


class Rendition(Params):
    height: int = Field(ge=16, le=4320, description="pixels; the width keeps the aspect ratio")
    codec: Literal["h264", "hevc"] = "h264"
    video_bitrate: str | None = Field(default=None, description="e.g. 2500k or 3M")
    crf: int | None = Field(default=None, ge=0, le=51)
    preset: Literal[PRESETS] = "veryfast"  # type: ignore[valid-type]
    audio_bitrate: str = "128k"

    @field_validator("video_bitrate", "audio_bitrate")
    @classmethod
    def _bitrate(cls, value: str | None) -> str | None:
        if value is not None and not _BITRATE.match(value):
            raise ValueError("must be a number of bits per second, e.g. 2500k or 3M")
        return value

    @_model_validator(mode="after")
    def _one_rate(self) -> Rendition:
        if self.height % 2:
            raise ValueError("height must be even (h264 and hevc need even dimensions)")
        if self.video_bitrate is not None and self.crf is not None:
            raise ValueError("give video_bitrate or crf, not both")
        return self


class MediaTranscode(Params):
    source: WorkspacePath
    renditions: list[Rendition] = Field(min_length=1, max_length=10)

    @field_validator("renditions")
    @classmethod
    def _distinct(cls, value: list[Rendition]) -> list[Rendition]:
        heights = [r.height for r in value]
        if len(set(heights)) != len(heights):
            raise ValueError("each rendition needs its own height (outputs are named by it)")
        return value


class MediaPackage(Params):
    sources: list[WorkspacePath] = Field(min_length=1, max_length=10)
    format: Literal["hls", "dash"]
    destination: WorkspaceFolder = Field(description="workspace folder for the package")
    segment_seconds: float = Field(default=4.0, ge=1, le=60)


class MediaThumbnail(Params):
    source: WorkspacePath
    at_seconds: float | None = Field(default=None, ge=0)
    every_seconds: float | None = Field(default=None, gt=0)
    width: int | None = Field(default=None, ge=16, le=7680)
    format: Literal["jpg", "png"] = "jpg"

    @_model_validator(mode="after")
    def _one_timing(self) -> MediaThumbnail:
        if self.at_seconds is not None and self.every_seconds is not None:
            raise ValueError("give at_seconds or every_seconds, not both")
        return self


class FileChecksum(Params):
    source: WorkspacePath
    algorithm: Literal["md5", "sha1", "sha256"] = "sha256"


class ArchiveExtract(Params):
    source: WorkspacePath
    destination: WorkspaceFolder = Field(description="workspace folder to extract into")
    extensions: list[str] | None = Field(
        default=None, max_length=100, description="only files ending so, e.g. [\".mp4\"]"
    )

    @field_validator("extensions")
    @classmethod
    def _extensions(cls, value: list[str] | None) -> list[str] | None:
        if value is None:
            return None
        return [v if v.startswith(".") else f".{v}" for v in (e.lower() for e in value)]


# How often a task is tried when it fails transiently (or its worker is lost), and how long
# to wait in between: doubling from `base_delay`, capped, with jitter.
DEFAULT_RETRY = RetryPolicy(max_attempts=3, base_delay=1.0, max_delay=30.0)
TRANSFER_RETRY = RetryPolicy(max_attempts=5, base_delay=2.0, max_delay=60.0)


@dataclass(frozen=True)
class Tool:
    """A tool as the platform knows it. `internal`: only that facade schedules it (its
    parameters reach platform storage the facade has checked the caller may use), so the
    jobs API refuses it and sends control of its jobs to the facade."""

    parameters: type[Params]
    retry: RetryPolicy = DEFAULT_RETRY
    internal: Facade | None = None


REGISTRY: dict[str, Tool] = {
    "storage:get": Tool(StorageGet, TRANSFER_RETRY),
    "storage:put": Tool(StoragePut, TRANSFER_RETRY),
    "debug:sleep": Tool(DebugSleep),
    "debug:log": Tool(DebugLog),
    "debug:fail": Tool(DebugFail, RetryPolicy(max_attempts=3, base_delay=0.2, max_delay=1.0)),
    "media:probe": Tool(MediaProbe),
    "media:transcode": Tool(MediaTranscode),
    "media:package": Tool(MediaPackage),
    "media:thumbnail": Tool(MediaThumbnail),
    "file:checksum": Tool(FileChecksum),
    "archive:extract": Tool(ArchiveExtract),
    "gate:annotate": Tool(GateAnnotate, RetryPolicy(max_attempts=3, base_delay=2.0,
                                                    max_delay=30.0), internal=GATE_API),
}
PARAMETERS: dict[str, type[Params]] = {name: tool.parameters for name, tool in REGISTRY.items()}


def retry_policy(tool: str) -> RetryPolicy:
    known = REGISTRY.get(tool)
    return known.retry if known is not None else DEFAULT_RETRY


def internal_to(tool: str) -> Facade | None:
    """The facade that alone schedules `tool`, or None (the jobs API takes it)."""
    known = REGISTRY.get(tool)
    return known.internal if known is not None else None


def field_errors(exc: ValidationError, prefix: str) -> list[dict[str, str]]:
    """Pydantic's errors as `{"field": "a.b.0", "message": "..."}`, under `prefix`."""
    errors = []
    for error in exc.errors():
        path = ".".join(str(part) for part in (prefix, *error["loc"]) if part != "")
        errors.append({"field": path or "body",
                       "message": str(error["msg"]).removeprefix("Value error, ")})
    return errors


def task_parameter_errors(spec: JobSpec) -> list[dict[str, str]]:
    """Every problem with the tools and parameters of `spec`, each naming its field."""
    errors: list[dict[str, str]] = []
    for index, task in enumerate(spec.tasks):
        model = PARAMETERS.get(task.tool)
        if model is None:
            errors.append({
                "field": f"tasks.{index}.tool",
                "message": f"unknown tool {task.tool!r}; known tools: "
                           + ", ".join(sorted(PARAMETERS)),
            })
            continue
        try:
            model.model_validate(task.parameters)
        except ValidationError as exc:
            errors.extend(field_errors(exc, f"tasks.{index}.parameters"))
    return errors

