from pathlib import Path

import pytest

from shared.errors import ConfigError
from shared.settings import (
    Settings,
    load_settings,
    setting_variables,
    to_env_lines,
    unknown_variables,
)


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    for key in list(os.environ):
        if key.startswith("CONVEYOR_"):
            monkeypatch.delenv(key)


def test_defaults_point_at_localhost() -> None:
    settings = load_settings()
    assert settings.amqp_url.startswith("amqp://guest:guest@127.0.0.1:5672")
    assert settings.mongo_url == "mongodb://127.0.0.1:27017"
    assert settings.regions == ["local"]
    assert settings.default_region == "local"


def test_regions_are_comma_separated(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CONVEYOR_REGIONS", "aws:eu-central-1, aws:us-east-1")
    monkeypatch.setenv("CONVEYOR_DEFAULT_REGION", "aws:us-east-1")
    settings = load_settings()
    assert settings.regions == ["aws:eu-central-1", "aws:us-east-1"]
    assert settings.default_region == "aws:us-east-1"


@pytest.mark.parametrize(
    ("variable", "value", "expected"),
    [
        ("CONVEYOR_PREFETCH", "0", "CONVEYOR_PREFETCH (got '0'): Input should be greater"),
        ("CONVEYOR_PREFETCH", "many", "CONVEYOR_PREFETCH (got 'many'): Input should be a valid"),
        ("CONVEYOR_AMQP_URL", "http://x", "CONVEYOR_AMQP_URL (got 'http://x'): must start with"),
        ("CONVEYOR_MONGO_URL", "localhost", "CONVEYOR_MONGO_URL (got 'localhost'): must start"),
        ("CONVEYOR_S3_ENDPOINT", "ftp://x", "CONVEYOR_S3_ENDPOINT (got 'ftp://x'): must start"),
        ("CONVEYOR_S3_ENDPOINT", "http://minio:9000/s3",
         "CONVEYOR_S3_ENDPOINT (got 'http://minio:9000/s3'): must be scheme, host and port"),
        ("CONVEYOR_S3_PUBLIC_ENDPOINT", "localhost:9000",
         "CONVEYOR_S3_PUBLIC_ENDPOINT (got 'localhost:9000'): must start with http:// or "
         "https://"),
        ("CONVEYOR_S3_PUBLIC_ENDPOINT", "http://", "CONVEYOR_S3_PUBLIC_ENDPOINT (got 'http://'): "
         "names no host"),
        ("CONVEYOR_S3_PUBLIC_ENDPOINT", "http://s3.example.org:99999",
         "CONVEYOR_S3_PUBLIC_ENDPOINT (got 'http://s3.example.org:99999'): has a bad port"),
        ("CONVEYOR_S3_PUBLIC_ENDPOINT", "http://s3.example.org:nine",
         "CONVEYOR_S3_PUBLIC_ENDPOINT (got 'http://s3.example.org:nine'): has a bad port"),
        ("CONVEYOR_S3_PUBLIC_ENDPOINT", "https://s3.example.org/conveyor",
         "CONVEYOR_S3_PUBLIC_ENDPOINT (got 'https://s3.example.org/conveyor'): must be scheme, "
         "host and port only, without a path or query"),
        ("CONVEYOR_S3_PUBLIC_ENDPOINT", "https://s3.example.org?x=1",
         "CONVEYOR_S3_PUBLIC_ENDPOINT (got 'https://s3.example.org?x=1'): must be scheme"),
        ("CONVEYOR_S3_PUBLIC_ENDPOINT", "http://key:secret@s3.example.org",
         "CONVEYOR_S3_PUBLIC_ENDPOINT (got 'http://key:***@s3.example.org'): must not hold "
         "credentials"),
        ("CONVEYOR_S3_REGION", "", "CONVEYOR_S3_REGION (got ''): String should have at least"),
        ("CONVEYOR_S3_BUCKET", "Bad_Bucket", "CONVEYOR_S3_BUCKET (got 'Bad_Bucket'): must be"),
        ("CONVEYOR_REGIONS", "EU West", "'EU West' is not a region name"),
        ("CONVEYOR_REGIONS", "a,a", "lists a region twice"),
        ("CONVEYOR_DEFAULT_REGION", "mars", "CONVEYOR_DEFAULT_REGION 'mars' is not one of"),
        ("CONVEYOR_GATEWAY_PORT", "70000", "CONVEYOR_GATEWAY_PORT (got '70000')"),
        ("CONVEYOR_LOG_LEVEL", "loud", "CONVEYOR_LOG_LEVEL (got 'loud'): Input should be"),
        ("CONVEYOR_GRACE_PERIOD", "-1", "CONVEYOR_GRACE_PERIOD (got '-1')"),
        ("CONVEYOR_LOG_RETENTION_DAYS", "0", "CONVEYOR_LOG_RETENTION_DAYS (got '0')"),
    ],
)
def test_bad_values_are_rejected_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str, expected: str
) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(ConfigError) as caught:
        load_settings()
    assert expected in str(caught.value)


def test_s3_public_endpoint_defaults_to_the_s3_endpoint(
    monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CONVEYOR_S3_ENDPOINT", "http://minio:9000/")
    settings = load_settings()
    assert settings.s3_public_endpoint == ""
    assert settings.s3_client_endpoint == "http://minio:9000"
    monkeypatch.setenv("CONVEYOR_S3_PUBLIC_ENDPOINT", "https://S3.example.org:8443/")
    settings = load_settings()
    assert settings.s3_client_endpoint == "https://S3.example.org:8443"
    assert settings.s3_endpoint == "http://minio:9000"
    monkeypatch.setenv("CONVEYOR_S3_PUBLIC_ENDPOINT", "http://[::1]:9000")
    assert load_settings().s3_client_endpoint == "http://[::1]:9000"


@pytest.mark.parametrize("variable", ["CONVEYOR_S3_PUBLIC_ENDPOINT", "CONVEYOR_AMQP_URL"])
def test_a_urls_password_is_not_echoed_in_errors(
    monkeypatch: pytest.MonkeyPatch, variable: str
) -> None:
    monkeypatch.setenv(variable, "ftp://user:hunter2@example.org/")
    with pytest.raises(ConfigError) as caught:
        load_settings()
    assert "hunter2" not in str(caught.value)
    assert f"{variable} (got 'ftp://user:***@example.org/')" in str(caught.value)


def test_secrets_are_not_echoed_in_errors(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CONVEYOR_S3_SECRET_KEY", "")
    monkeypatch.setenv("CONVEYOR_PREFETCH", "0")
    with pytest.raises(ConfigError) as caught:
        load_settings()
    assert "CONVEYOR_PREFETCH" in str(caught.value)


def test_env_file_is_read_and_environment_wins(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    env_file = tmp_path / "conveyor.env"
    env_file.write_text("CONVEYOR_PREFETCH=7\nCONVEYOR_MONGO_DB=fromfile\n")
    monkeypatch.setenv("CONVEYOR_MONGO_DB", "fromenv")
    settings = load_settings(env_file)
    assert settings.prefetch == 7
    assert settings.mongo_db == "fromenv"


def test_env_file_with_unknown_setting_is_an_error(tmp_path: Path) -> None:
    env_file = tmp_path / "conveyor.env"
    env_file.write_text("CONVEYOR_PREFETCHH=7\n")
    with pytest.raises(ConfigError, match="CONVEYOR_PREFETCHH"):
        load_settings(env_file)


def test_missing_env_file_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_settings(tmp_path / "absent.env")


def test_env_lines_round_trip(tmp_path: Path) -> None:
    original = Settings(
        _env_file=None, regions=["a", "b"], default_region="b", prefetch=3,
        s3_secret_key="s3cret",
    )
    env_file = tmp_path / "conveyor.env"
    env_file.write_text("\n".join(to_env_lines(original)) + "\n")
    assert load_settings(env_file) == original


def test_unknown_variables_are_reported() -> None:
    environ = {"CONVEYOR_PREFETCH": "1", "CONVEYOR_PREFECTH": "2", "CONVEYOR_API_KEY": "k",
               "CONVEYOR_CHROMIUM": "chromium"}
    assert unknown_variables(environ) == ["CONVEYOR_PREFECTH"]
    assert "CONVEYOR_DEFAULT_REGION" in setting_variables()
