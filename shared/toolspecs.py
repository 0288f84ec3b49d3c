"""The parameters of every tool, as typed models. The gateway and the scheduler validate a
job against these before anything runs; the worker parses them again to run the tool."""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
)
from pydantic import model_validator as _model_validator

from shared.jobspec import JobSpec
from shared.retry import RetryPolicy

MAX_PATH = 1024
# C0 and C1 control characters (NUL among them), DEL, and lone surrogates: an S3 key or a
# file name with one is cut short, refused, or shown as something else than it is.
_UNPRINTABLE = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff]")


def check_printable(value: str) -> str:
    """`value`, or ValueError naming the first control character in it and where."""
    found = _UNPRINTABLE.search(value)
    if found is not None:
        raise ValueError(f"must not contain control characters (U+{ord(found[0]):04X} at "
                         f"position {found.start()})")
    return value


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


def split_s3_url(url: str) -> tuple[str, str]:
    """`s3://bucket/key` -> (bucket, key); the key may be empty or end with '/'."""
    if not url.startswith("s3://"):
        raise ValueError("must be an s3://bucket/key URL")
    bucket, _, key = url[len("s3://"):].partition("/")
    if not bucket:
        raise ValueError("names no bucket (s3://bucket/key)")
    check_printable(url)
    return bucket, key


class Params(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Credentials(Params):
    """For an s3:// location: `access_key` and `secret_key` (and optionally `endpoint`,
    `region`, `session_token`); for http(s): `username` and `password`, or `token`."""

    access_key: str | None = None
    secret_key: SecretStr | None = None
    session_token: SecretStr | None = None
    endpoint: str | None = Field(default=None, description="S3 endpoint, e.g. https://s3.eu-central-1.amazonaws.com")
    region: str | None = None
    username: str | None = None
    password: SecretStr | None = None
    token: SecretStr | None = None

    @field_validator("endpoint")
    @classmethod
    def _endpoint(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return value.rstrip("/") if value else value

    @_model_validator(mode="after")
    def _pairs(self) -> Credentials:
        if (self.access_key is None) != (self.secret_key is None):
            raise ValueError("access_key and secret_key go together")
        if (self.username is None) != (self.password is None):
            raise ValueError("username and password go together")
        return self


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


def _s3_url(value: str) -> str:
    split_s3_url(value)
    return value


S3Url = Annotated[str, AfterValidator(_s3_url)]


class GateLocation(Params):
    """An s3:// location of a GATE Cloud-style job: in the platform's storage, or (`own`) in
    the user's bucket, reached with `credentials` or anonymously when there are none."""

    url: S3Url
    own: bool = False
    credentials: Credentials | None = None


class GateInput(Params):
    id: str = Field(min_length=1, max_length=64)
    source: S3Url = Field(description="the archive, in the platform's storage; for "
                          "RESULTS, the folder of another run's output files")
    type: Literal["ZIP", "TAR", "ARC", "RESULTS"]
    encoding: str | None = None
    mime_type_override: str | None = None
    file_extensions: list[str] | None = Field(default=None, max_length=100)
    mime_types: list[str] | None = Field(default=None, max_length=100)


class GateOutput(Params):
    id: str = Field(min_length=1, max_length=64)
    type: Literal["GATE_XML", "INLINE_XML", "XCES", "JSON", "MIMIR"]
    file_extension: str | None = Field(default=None, max_length=64)
    annotation_selectors: list[str] | None = Field(default=None, max_length=100)
    index_url: str | None = None
    username: str | None = None
    password: SecretStr | None = None


class GateAnnotate(Params):
    """Runs a GATE Cloud-style job: the application's pipeline over every document of the
    inputs, each output spec written under `output` (MIMIR: POSTed to its index)."""

    application: GateLocation
    inputs: list[GateInput] = Field(min_length=1, max_length=100)
    outputs: list[GateOutput] = Field(min_length=1, max_length=100)
    output: GateLocation
    report: S3Url = Field(description="where the run's report goes, in the platform's storage")


PARAMETERS: dict[str, type[Params]] = {
    "storage:get": StorageGet,
    "storage:put": StoragePut,
    "debug:sleep": DebugSleep,
    "debug:log": DebugLog,
    "debug:fail": DebugFail,
    "media:probe": MediaProbe,
    "media:transcode": MediaTranscode,
    "media:package": MediaPackage,
    "media:thumbnail": MediaThumbnail,
    "file:checksum": FileChecksum,
    "archive:extract": ArchiveExtract,
    "gate:annotate": GateAnnotate,
}
# Tools that only the platform itself schedules (their parameters reach platform storage the
# gateway has checked the caller may use); the jobs API refuses them.
INTERNAL_TOOLS = frozenset({"gate:annotate"})

# How often a task is tried when it fails transiently (or its worker is lost), and how long
# to wait in between: doubling from `base_delay`, capped, with jitter.
DEFAULT_RETRY = RetryPolicy(max_attempts=3, base_delay=1.0, max_delay=30.0)
RETRIES: dict[str, RetryPolicy] = {
    "storage:get": RetryPolicy(max_attempts=5, base_delay=2.0, max_delay=60.0),
    "storage:put": RetryPolicy(max_attempts=5, base_delay=2.0, max_delay=60.0),
    "debug:fail": RetryPolicy(max_attempts=3, base_delay=0.2, max_delay=1.0),
    "gate:annotate": RetryPolicy(max_attempts=3, base_delay=2.0, max_delay=30.0),
}


def retry_policy(tool: str) -> RetryPolicy:
    return RETRIES.get(tool, DEFAULT_RETRY)


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

