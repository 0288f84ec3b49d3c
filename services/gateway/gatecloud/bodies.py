"""Request bodies of the GATE Cloud-style API, in JSON or in the seed's XML forms, each
checked field by field (a 400 names the field and says why)."""

from __future__ import annotations

import codecs
import re
from typing import Annotated, Any, Literal, TypeVar

from aiohttp import web
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

from shared.api import bad_request, parse_json_body
from shared.gate import InputType, OutputType
from shared.names import DisplayName
from shared.params import split_s3_url
from shared.toolspecs import field_errors
from shared.xmlforms import XmlBodyError, from_xml, sends_xml

Model = TypeVar("Model", bound=BaseModel)
_SELECTOR = re.compile(r"^[^:,\s]*:[^:,\s]*$")
_FILE_NAME = re.compile(r"^[\w][\w .()+-]{0,199}$")
_MIME = re.compile(r"^[\w.+-]+/[\w.+*-]+$")
# Items of a comma-separated list, and specs of each kind in a job (what a run takes).
MAX_LISTED = 100


async def read_fields(request: web.Request, root: str) -> dict[str, Any]:
    """The body's fields: from `<root>…</root>` when it is XML, else from a JSON object."""
    raw = await request.read()
    if not raw.strip():
        raise bad_request([{"field": "body", "message": "is empty"}])
    if sends_xml(request):
        try:
            return from_xml(raw, root)
        except XmlBodyError as exc:
            raise bad_request([{"field": "body", "message": str(exc)}]) from None
    fields = parse_json_body(raw)
    if not isinstance(fields, dict):
        raise bad_request([{"field": "body", "message": "must be a JSON object"}])
    return fields


def parse(model: type[Model], fields: dict[str, Any]) -> Model:
    try:
        return model.model_validate(fields)
    except ValidationError as exc:
        raise bad_request(field_errors(exc, "")) from None


async def read_body(request: web.Request, root: str, model: type[Model]) -> Model:
    return parse(model, await read_fields(request, root))


def split_list(value: str | None) -> list[str] | None:
    """The seed's comma-separated lists (`html, xml, txt`); None when empty."""
    if value is None:
        return None
    items = [item.strip() for item in value.split(",") if item.strip()]
    return items or None


def _plain_file_name(value: str) -> str:
    if not _FILE_NAME.match(value):
        raise ValueError("must be a plain file name (letters, digits, ' .()+-'), no '/'")
    return value


FileName = Annotated[str, AfterValidator(_plain_file_name)]


class Body(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class NewJob(Body):
    name: DisplayName
    organization: str | None = Field(default=None, min_length=1,
                                     description="needed when you belong to several")


class JobChanges(Body):
    name: DisplayName


def _s3_location(value: str | None) -> str | None:
    if value is not None:
        split_s3_url(value)
    return value


class OwnBucket(Body):
    """A location in the user's own bucket: the platform's S3 service unless `endpoint`."""

    def stored(self, location: str) -> dict[str, Any]:
        """As kept with the job: the secret in the clear (the worker needs it)."""
        return {"location": location, "accessKey": self.accessKey,
                "secretKey": self.secretKey.get_secret_value() if self.secretKey else None,
                "endpoint": self.endpoint}

    s3Location: str | None = None
    accessKey: str | None = Field(default=None, min_length=1)
    secretKey: SecretStr | None = None
    endpoint: str | None = None

    _location = field_validator("s3Location")(_s3_location)

    @field_validator("endpoint")
    @classmethod
    def _endpoint(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return value

    @_model_validator(mode="after")
    def _keys(self) -> OwnBucket:
        if (self.accessKey is None) != (self.secretKey is None):
            raise ValueError("accessKey and secretKey go together")
        return self


class ApplicationChange(OwnBucket):
    fileName: FileName | None = None

    @_model_validator(mode="after")
    def _one_kind(self) -> ApplicationChange:
        if (self.fileName is None) == (self.s3Location is None):
            raise ValueError("give either fileName (to upload the application here) or "
                             "s3Location (your own bucket)")
        if self.s3Location is not None and split_s3_url(self.s3Location)[1] in {"", "/"}:
            raise ValueError("s3Location must name the application's key, not only a bucket")
        if self.fileName is not None and (self.accessKey or self.endpoint):
            raise ValueError("accessKey, secretKey and endpoint go with s3Location only")
        return self


class OutputDirectoryChange(OwnBucket):
    defaultLocation: bool | None = None

    @_model_validator(mode="after")
    def _one_kind(self) -> OutputDirectoryChange:
        if bool(self.defaultLocation) == (self.s3Location is not None):
            raise ValueError("give either defaultLocation: true or s3Location")
        if self.defaultLocation is False:
            raise ValueError("defaultLocation can only be true; give s3Location instead")
        if self.s3Location is None and (self.accessKey or self.endpoint):
            raise ValueError("accessKey, secretKey and endpoint go with s3Location only")
        return self


def _short_list(value: str | None) -> str | None:
    if len(split_list(value) or []) > MAX_LISTED:
        raise ValueError(f"lists at most {MAX_LISTED} comma-separated items")
    return value


ShortList = Annotated[str, AfterValidator(_short_list)]


class InputSpec(Body):
    sourceBundle: str = Field(min_length=1, max_length=64)
    type: InputType | None = None
    encoding: str | None = None
    mimeTypeOverride: str | None = None
    fileExtensions: ShortList | None = Field(default=None, max_length=4000)
    mimeTypes: ShortList | None = Field(default=None, max_length=4000)

    @field_validator("sourceBundle", mode="before")
    @classmethod
    def _bundle(cls, value: Any) -> Any:
        # A JSON number is taken as the id it spells; `D-<id>` is resolved on lookup.
        if isinstance(value, int) and not isinstance(value, bool):
            return str(value)
        return value

    @field_validator("encoding")
    @classmethod
    def _encoding(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                # Also refuses the codecs that are not text encodings (base64, rot13, zlib).
                known = codecs.lookup(value)._is_text_encoding
            except LookupError:
                known = False
            if not known:
                raise ValueError(f"{value!r} is not a character encoding this platform "
                                 "knows (e.g. UTF-8, ISO-8859-1)")
        return value

    @field_validator("mimeTypeOverride")
    @classmethod
    def _mime(cls, value: str | None) -> str | None:
        if value is not None and not _MIME.match(value):
            raise ValueError("must be a MIME type such as text/html")
        return value

    @_model_validator(mode="after")
    def _filters(self) -> InputSpec:
        if self.type == "ARC" and self.fileExtensions:
            raise ValueError("fileExtensions applies to ZIP and TAR inputs; use mimeTypes")
        if self.type in {"ZIP", "TAR"} and self.mimeTypes:
            raise ValueError("mimeTypes applies to ARC inputs; use fileExtensions")
        if self.type == "RESULTS" and (self.fileExtensions or self.mimeTypes
                                       or self.encoding or self.mimeTypeOverride):
            raise ValueError("a bundle of job results is read as it was written: "
                             "encoding, mimeTypeOverride and the filters do not apply")
        return self


class OutputSpec(Body):
    type: OutputType = "GATE_XML"
    fileExtension: str | None = Field(default=None, min_length=1, max_length=64)
    annotationSelectors: ShortList | None = Field(default=None, max_length=4000)
    indexUrl: str | None = None
    username: str | None = Field(default=None, min_length=1)
    password: SecretStr | None = None

    @field_validator("fileExtension")
    @classmethod
    def _extension(cls, value: str | None) -> str | None:
        if value is not None and ("/" in value or "\\" in value or ".." in value):
            raise ValueError("must be a file name ending such as .GATE.xml (no '/' or '..')")
        return value

    @field_validator("annotationSelectors")
    @classmethod
    def _selectors(cls, value: str | None) -> str | None:
        for selector in split_list(value) or []:
            if not _SELECTOR.match(selector):
                raise ValueError(f"{selector!r} is not an annotation selector: write "
                                 "set:Type, :Type (default set), set: or :")
        return value

    @field_validator("indexUrl")
    @classmethod
    def _index(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("http://", "https://")):
            raise ValueError("must be an http:// or https:// URL")
        return value

    @_model_validator(mode="after")
    def _by_type(self) -> OutputSpec:
        if self.type == "MIMIR":
            if self.indexUrl is None:
                raise ValueError("a MIMIR output needs indexUrl")
            if self.fileExtension is not None:
                raise ValueError("a MIMIR output writes no files: fileExtension does not apply")
        elif self.indexUrl or self.username or self.password:
            raise ValueError("indexUrl, username and password apply to MIMIR outputs only")
        if self.password is not None and self.username is None:
            # A username alone is basic auth with an empty password.
            raise ValueError("a password needs a username")
        return self


class Control(Body):
    action: Literal["start", "resume", "stop", "reset"]


class NewBundle(Body):
    name: DisplayName
    fileName: FileName
    organization: str | None = Field(default=None, min_length=1)
