"""Every `CONVEYOR_*` setting, read once in a service's `main()` and passed down.

One class serves all services so that a single env file (the one `conveyor dev` writes, or a
compose `.env`) configures any of them; each service reads only the fields it needs.
"""

from __future__ import annotations

import base64
import binascii
import os
import re
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    Field,
    SecretStr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from shared import endpoints
from shared.errors import ConfigError

ENV_PREFIX = "CONVEYOR_"
_REGION = re.compile(r"^[a-z0-9][a-z0-9:._-]{0,62}$")
_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
_URL_PASSWORD = re.compile(r"(://[^/@]*?:)[^/@]*@")
# Variables read by the client CLI (and the GATE walkthrough) or by the browser tests
# (CONVEYOR_CHROMIUM) rather than by a service; not an error to find them set.
CLIENT_VARIABLES = frozenset({"CONVEYOR_URL", "CONVEYOR_API_KEY", "CONVEYOR_CHROMIUM"})

Port = Annotated[int, Field(ge=0, le=65535)]


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX, extra="forbid", frozen=True, case_sensitive=False
    )

    # Servers
    amqp_url: str = "amqp://guest:guest@127.0.0.1:5672/"
    amqp_heartbeat: int = Field(default=10, ge=1, le=600)
    amqp_prefix: str = Field(
        default="", description="Prepended to every exchange and queue name (isolation)."
    )
    mongo_url: str = "mongodb://127.0.0.1:27017"
    mongo_db: str = "conveyor"
    s3_endpoint: str = "http://127.0.0.1:9000"
    s3_public_endpoint: str = Field(default="", description="S3 address clients use, which "
                                    "their presigned URLs are signed for; default: s3_endpoint")
    s3_access_key: SecretStr = SecretStr("minioadmin")
    s3_secret_key: SecretStr = SecretStr("minioadmin")
    s3_bucket: str = "conveyor"
    s3_region: str = Field(default="us-east-1", min_length=1)

    # Regions
    regions: Annotated[list[str], NoDecode] = ["local"]
    default_region: str = "local"

    # HTTP (health endpoints of every service; the API of the gateway)
    bind_host: str = "127.0.0.1"
    gateway_port: Port = 8080
    scheduler_port: Port = 8081
    logger_port: Port = 8082
    worker_port: Port = Field(default=8083, description="0 picks a free port")
    public_url: str = Field(default="", description="Base URL clients use; derived if empty")

    # Consumption and reliability
    prefetch: int = Field(default=64, ge=1, le=65535)
    worker_concurrency: int = Field(default=2, ge=1, le=1024)
    grace_period: float = Field(default=30.0, gt=0, le=3600)
    max_attempts: int = Field(default=5, ge=1, le=100)
    retry_base_delay: float = Field(default=1.0, gt=0, le=3600)
    retry_max_delay: float = Field(default=300.0, gt=0, le=86400)

    # Gateway
    max_body_bytes: int = Field(default=4 * 1024 * 1024, ge=1024, le=1024**3)

    # Workers
    allow_private_networks: bool = Field(
        default=False, description="let downloads and notifications reach private addresses"
    )
    scratch_dir: str = Field(default="", description="local scratch space; default: system temp")
    heartbeat_seconds: float = Field(default=5.0, gt=0, le=600)
    archive_max_bytes: int = Field(default=20 * 1024**3, ge=1024)
    archive_max_entries: int = Field(default=100_000, ge=1)
    stale_upload_hours: float = Field(
        default=24.0, gt=0, le=24 * 365, description="incomplete multipart uploads older "
        "than this are aborted (a worker killed mid-upload leaves one)",
    )
    archive_max_ratio: float = Field(
        default=200.0, ge=1, description="archive:extract refuses archives that unpack to "
        "more than this many times their own size (beyond the first MiB)",
    )
    task_silence_seconds: float = Field(
        default=60.0, gt=0, le=86400,
        description="a running task not heard of for this long is retried elsewhere",
    )
    dispatch_timeout_seconds: float = Field(
        default=30.0, gt=0, le=86400,
        description="a dispatched task not started for this long, with its region's queue "
                    "drained past it, is sent again under the same attempt",
    )
    worker_lost_seconds: float = Field(
        default=5.0, gt=0, le=600,
        description="a worker whose control queue stays gone this long is dead: its tasks "
                    "are retried elsewhere",
    )

    # GATE Cloud-compatible jobs (/api/job): prices shown and charged, results kept
    gate_price_setup: float = Field(default=0.0, ge=0, description="one-off price of a run")
    gate_price_hour: float = Field(default=0.8, ge=0, description="price per processing hour")
    gate_price_mib: float = Field(default=0.0, ge=0, description="price per MiB of input")
    gate_results_days: int = Field(
        default=30, ge=1, le=3650, description="how long a completed job's results are kept"
    )

    # Logs
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    log_format: Literal["auto", "json", "console"] = "auto"
    log_retention_days: int = Field(default=30, ge=1, le=3650)
    # Calls per API key to the log routes in any 60 s / 24 h span. The window stores each
    # accepted call, hence the bound (shared.ratelimit.MAX_CALLS).
    log_rate_per_minute: int = Field(default=20, ge=1, le=10_000)
    log_rate_per_day: int = Field(default=1000, ge=1, le=10_000)
    log_batch_size: int = Field(default=500, ge=1, le=10_000)
    log_batch_wait_ms: int = Field(default=20, ge=0, le=10_000)
    logger_url: str = Field(default="", description="where the gateway finds the logger's API")

    # Credentials at rest: comma-separated Fernet keys, newest first (see shared/secrets.py).
    # Unset, each process makes one up (and says so): fine for one process and for
    # `conveyor dev`, which writes its own into its env file; not for a deployment.
    secrets_key: SecretStr = Field(default_factory=lambda: SecretStr(_new_fernet_key()))

    # `conveyor dev`
    dev_api_key: SecretStr | None = None

    @field_validator("amqp_url")
    @classmethod
    def _amqp_scheme(cls, value: str) -> str:
        if not value.startswith(("amqp://", "amqps://")):
            raise ValueError("must start with amqp:// or amqps://")
        return value

    @field_validator("mongo_url")
    @classmethod
    def _mongo_scheme(cls, value: str) -> str:
        if not value.startswith(("mongodb://", "mongodb+srv://")):
            raise ValueError("must start with mongodb:// or mongodb+srv://")
        return value

    @field_validator("logger_url")
    @classmethod
    def _logger_url(cls, value: str) -> str:
        if value and not value.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return value.rstrip("/")

    @field_validator("s3_endpoint", "s3_public_endpoint")
    @classmethod
    def _s3_endpoint(cls, value: str, info: ValidationInfo) -> str:
        if not value and info.field_name == "s3_public_endpoint":
            return value  # unset: clients use CONVEYOR_S3_ENDPOINT too
        return endpoints.s3_endpoint(value)

    @field_validator("s3_bucket")
    @classmethod
    def _bucket_name(cls, value: str) -> str:
        if not _BUCKET.match(value):
            raise ValueError("must be 3-63 lowercase letters, digits, '.' or '-'")
        return value

    @field_validator("secrets_key")
    @classmethod
    def _fernet_keys(cls, value: SecretStr) -> SecretStr:
        keys = _split(value.get_secret_value())
        if not keys:
            raise ValueError("must hold at least one key")
        for index, key in enumerate(keys):
            try:
                valid = len(base64.urlsafe_b64decode(key.encode())) == 32
            except (binascii.Error, ValueError):
                valid = False
            if not valid:
                raise ValueError(f"key {index + 1} is not a Fernet key (32 bytes in URL-safe "
                                 "base64, as Fernet.generate_key() makes)")
        return value

    @field_validator("regions", mode="before")
    @classmethod
    def _split_regions(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @field_validator("regions")
    @classmethod
    def _region_names(cls, value: list[str]) -> list[str]:
        if not value:
            raise ValueError("must name at least one region")
        for region in value:
            if not _REGION.match(region):
                raise ValueError(
                    f"{region!r} is not a region name (lowercase letters, digits, ':._-')"
                )
        if len(set(value)) != len(value):
            raise ValueError("lists a region twice")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> Settings:
        if self.default_region not in self.regions:
            raise ValueError(
                f"CONVEYOR_DEFAULT_REGION {self.default_region!r} is not one of "
                f"CONVEYOR_REGIONS {','.join(self.regions)}"
            )
        if self.task_silence_seconds < 2 * self.heartbeat_seconds:
            raise ValueError(
                "CONVEYOR_TASK_SILENCE_SECONDS must be at least twice CONVEYOR_HEARTBEAT_SECONDS"
            )
        if self.retry_max_delay < self.retry_base_delay:
            raise ValueError("CONVEYOR_RETRY_MAX_DELAY is below CONVEYOR_RETRY_BASE_DELAY")
        return self

    @property
    def logger_base_url(self) -> str:
        return self.logger_url or f"http://127.0.0.1:{self.logger_port}"

    @property
    def secrets_keys(self) -> list[str]:
        return _split(self.secrets_key.get_secret_value())

    @property
    def s3_host(self) -> str:
        return self.s3_endpoint.split("://", 1)[1]

    @property
    def s3_client_endpoint(self) -> str:
        """Where the presigned URLs given to clients point."""
        return self.s3_public_endpoint or self.s3_endpoint


def _new_fernet_key() -> str:
    return base64.urlsafe_b64encode(os.urandom(32)).decode()


def _split(value: str) -> list[str]:
    return [part.strip() for part in value.split(",") if part.strip()]


def env_name(field: str) -> str:
    return f"{ENV_PREFIX}{field.upper()}"


def setting_variables() -> frozenset[str]:
    """Every variable name a service reads."""
    return frozenset(env_name(name) for name in Settings.model_fields)


def load_settings(env_file: Path | None = None, **overrides: Any) -> Settings:
    """Build the settings from the environment (and an env file), or raise `ConfigError`
    naming each bad variable and why."""
    if env_file is not None and not env_file.is_file():
        raise ConfigError(f"env file {env_file} does not exist")
    try:
        return Settings(_env_file=env_file, **overrides)
    except ValidationError as exc:
        raise ConfigError(describe_validation_error(exc)) from None


def describe_validation_error(exc: ValidationError) -> str:
    lines = []
    for error in exc.errors():
        location = ".".join(str(part) for part in error["loc"])
        name = env_name(location) if location else "settings"
        value = error.get("input")
        if isinstance(value, str):  # a URL's password is not repeated either
            value = _URL_PASSWORD.sub(r"\1***@", value)
        shown = "" if location in {"s3_secret_key", "s3_access_key", "dev_api_key",
                                   "secrets_key"} else (
            f" (got {value!r})" if location and not isinstance(value, dict) else ""
        )
        message = str(error["msg"]).removeprefix("Value error, ")
        lines.append(f"invalid setting {name}{shown}: {message}")
    return "; ".join(lines)


def unknown_variables(environ: dict[str, str] | None = None) -> list[str]:
    """`CONVEYOR_*` variables that no setting reads: most likely typos."""
    known = setting_variables() | CLIENT_VARIABLES
    source = os.environ if environ is None else environ
    return sorted(key for key in source if key.startswith(ENV_PREFIX) and key.upper() not in known)


def to_env_lines(settings: Settings) -> list[str]:
    """`KEY=value` lines for every setting, secrets included: for an env file that lets
    another process join the same instance."""
    lines = []
    for name in Settings.model_fields:
        value = getattr(settings, name)
        if value is None:
            continue
        if isinstance(value, SecretStr):
            value = value.get_secret_value()
        elif isinstance(value, list):
            value = ",".join(value)
        lines.append(f"{env_name(name)}={value}")
    return lines
