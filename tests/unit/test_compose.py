"""compose.yaml: the services of the platform, each healthy-checked, configured only with
variables that are real settings, and a worker that scales."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from shared.settings import Settings, setting_variables

ROOT = Path(__file__).resolve().parents[2]
OURS = {"gateway", "scheduler", "worker", "logger"}
S3_HOST_PORT = 9000
PUBLIC_DEFAULT = f"http://localhost:{S3_HOST_PORT}"


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((ROOT / "compose.yaml").read_text())
    return data


def test_services_are_all_there(compose: dict[str, Any]) -> None:
    assert set(compose["services"]) == {"rabbitmq", "mongo", "minio"} | OURS
    assert "management" in compose["services"]["rabbitmq"]["image"]


def test_every_service_has_a_healthcheck(compose: dict[str, Any]) -> None:
    for name, service in compose["services"].items():
        test = service.get("healthcheck", {}).get("test")
        assert test, f"{name} has no healthcheck"
        if name in OURS:
            assert test[-1].endswith("/readyz"), name


def test_our_services_are_built_here_and_wait_for_healthy_servers(
    compose: dict[str, Any]
) -> None:
    for name in OURS:
        service = compose["services"][name]
        assert service["build"] == "."
        assert service["command"] == [name]
        assert {dep: cond["condition"] for dep, cond in service["depends_on"].items()} == {
            "rabbitmq": "service_healthy", "mongo": "service_healthy",
            "minio": "service_healthy",
        }
    assert (ROOT / "Dockerfile").is_file()


def test_every_variable_set_is_a_real_setting(compose: dict[str, Any]) -> None:
    known = setting_variables()
    for name in OURS:
        variables = set(compose["services"][name]["environment"])
        assert variables, name
        assert variables <= known, f"{name} sets unknown {sorted(variables - known)}"


def test_health_port_matches_the_service_port(compose: dict[str, Any]) -> None:
    for name in OURS:
        service = compose["services"][name]
        port = service["environment"][f"CONVEYOR_{name.upper()}_PORT"]
        assert f":{port}/readyz" in service["healthcheck"]["test"][-1]


def test_the_api_and_s3_ports_are_published_and_a_worker_scales(
    compose: dict[str, Any]
) -> None:
    with_ports = {name for name, s in compose["services"].items() if s.get("ports")}
    assert with_ports == {"gateway", "minio"}
    # MinIO's S3 API only (not its console), and on loopback: its default keys are known.
    assert compose["services"]["minio"]["ports"] == [f"127.0.0.1:{S3_HOST_PORT}:9000"]
    worker = compose["services"]["worker"]
    assert "container_name" not in worker
    assert "ports" not in worker


def test_clients_are_given_urls_of_the_published_s3_port(compose: dict[str, Any]) -> None:
    """Services reach MinIO as `minio`, a name only containers resolve; the URLs they give
    clients are signed for the published port instead, unless the environment says where."""
    for name in OURS:
        environment = compose["services"][name]["environment"]
        assert environment["CONVEYOR_S3_ENDPOINT"] == "http://minio:9000", name
        assert environment["CONVEYOR_S3_PUBLIC_ENDPOINT"] == (
            "${CONVEYOR_S3_PUBLIC_ENDPOINT:-" + PUBLIC_DEFAULT + "}"), name
    assert Settings(_env_file=None, s3_public_endpoint=PUBLIC_DEFAULT).s3_client_endpoint == (
        PUBLIC_DEFAULT)


needs_docker_compose = pytest.mark.skipif(
    shutil.which("docker-compose") is None,
    reason="docker-compose (Debian package) not installed; .ci/run installs it")


def resolved(**environment: str) -> dict[str, Any]:
    """The file as docker-compose reads it in `environment` (ours less CONVEYOR_*)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CONVEYOR_")}
    result = subprocess.run(
        ["docker-compose", "-f", str(ROOT / "compose.yaml"), "config"],
        capture_output=True, text=True, check=False, env={**env, **environment},
    )
    assert result.returncode == 0, result.stderr
    data: dict[str, Any] = yaml.safe_load(result.stdout)
    return data


@needs_docker_compose
def test_docker_compose_accepts_the_file() -> None:
    gateway = resolved()["services"]["gateway"]["environment"]
    assert gateway["CONVEYOR_S3_PUBLIC_ENDPOINT"] == PUBLIC_DEFAULT


@needs_docker_compose
def test_the_public_s3_endpoint_is_set_from_the_environment() -> None:
    services = resolved(CONVEYOR_S3_PUBLIC_ENDPOINT="https://s3.example.org")["services"]
    for name in OURS:
        assert services[name]["environment"]["CONVEYOR_S3_PUBLIC_ENDPOINT"] == (
            "https://s3.example.org"), name
