"""compose.yaml: the services of the platform, each healthy-checked, configured only with
variables that are real settings, and a worker that scales."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from shared.settings import setting_variables

ROOT = Path(__file__).resolve().parents[2]
OURS = {"gateway", "scheduler", "worker", "logger"}


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


def test_one_public_port_and_a_scalable_worker(compose: dict[str, Any]) -> None:
    with_ports = [name for name, s in compose["services"].items() if s.get("ports")]
    assert with_ports == ["gateway"]
    worker = compose["services"]["worker"]
    assert "container_name" not in worker
    assert "ports" not in worker


@pytest.mark.skipif(shutil.which("docker-compose") is None,
                    reason="docker-compose (Debian package) not installed; .ci/run installs it")
def test_docker_compose_accepts_the_file() -> None:
    result = subprocess.run(
        ["docker-compose", "-f", str(ROOT / "compose.yaml"), "config", "-q"],
        capture_output=True, text=True, check=False,
    )
    assert result.returncode == 0, result.stderr
