"""What every tool's parameter model is built from: the frozen base model that refuses
unknown keys, credentials for a remote location, and the checks of text and s3:// URLs that
reach S3 keys and file names. Shared by the core tools (`shared.toolspecs`) and the GATE
contract (`shared.gate`)."""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, SecretStr, field_validator
from pydantic import model_validator as _model_validator

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


def _s3_url(value: str) -> str:
    split_s3_url(value)
    return value


S3Url = Annotated[str, AfterValidator(_s3_url)]
