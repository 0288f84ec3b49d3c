"""The contract of the GATE Cloud-style facade that both of its sides keep: the gateway
(`services/gateway/gatecloud/`), which takes a job's configuration and starts its runs, and
the worker's `gate:annotate` tool, which runs them. Input archive types, output formats and
the file endings they write, and the parameters of a run: neither side imports the other,
both import this."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, get_args

from pydantic import Field, SecretStr

from shared.params import Credentials, Params, S3Url

InputType = Literal["ZIP", "TAR", "ARC", "RESULTS"]
FileFormat = Literal["GATE_XML", "INLINE_XML", "XCES", "JSON"]
# A Mímir output POSTs each document to an index and writes no file.
OutputType = Literal[FileFormat, "MIMIR"]
INPUT_TYPES: tuple[str, ...] = get_args(InputType)
FORMATS: tuple[str, ...] = get_args(FileFormat)
OUTPUT_TYPES: tuple[str, ...] = get_args(OutputType)
DEFAULT_EXTENSIONS = {
    "GATE_XML": ".GATE.xml", "INLINE_XML": ".inline.xml", "XCES": ".xces.xml", "JSON": ".json",
}
CONTENT_TYPES = {
    "GATE_XML": "application/xml", "INLINE_XML": "application/xml", "XCES": "application/xml",
    "JSON": "application/json",
}


@dataclass(frozen=True)
class Facade:
    """An API that alone schedules some tools (see `shared.toolspecs.Tool.internal`): the
    jobs API refuses them, and sends control of their jobs here."""

    name: str
    path: str

    def control_path(self, job_id: str) -> str:
        return f"{self.path}/{job_id}/control"


GATE_API = Facade(name="the GATE Cloud API", path="/api/job")


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
    type: InputType
    encoding: str | None = None
    mime_type_override: str | None = None
    file_extensions: list[str] | None = Field(default=None, max_length=100)
    mime_types: list[str] | None = Field(default=None, max_length=100)


class GateOutput(Params):
    id: str = Field(min_length=1, max_length=64)
    type: OutputType
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
