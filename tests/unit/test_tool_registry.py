"""The tool registry: one entry per tool with its parameters, retry policy and, for a tool
that only a facade schedules, that facade (which the Jobs API reads to refuse it)."""

from __future__ import annotations

import pytest

from shared.gate import GATE_API, GateAnnotate
from shared.toolspecs import DEFAULT_RETRY, PARAMETERS, REGISTRY, internal_to, retry_policy


def test_only_gate_annotate_is_internal_and_it_belongs_to_the_gate_api() -> None:
    assert {name for name in REGISTRY if internal_to(name) is not None} == {"gate:annotate"}
    assert internal_to("gate:annotate") is GATE_API
    assert REGISTRY["gate:annotate"].parameters is GateAnnotate


@pytest.mark.parametrize("tool", ["", "storage:get", "gate:annotate:x", "no:such"])
def test_a_core_or_unknown_tool_belongs_to_no_facade(tool: str) -> None:
    assert internal_to(tool) is None


def test_the_facade_names_where_its_jobs_are_controlled() -> None:
    assert GATE_API.control_path("abc") == "/api/job/abc/control"


def test_retry_policies_come_from_the_registry_and_unknown_tools_get_the_default() -> None:
    assert retry_policy("storage:get").max_attempts == 5
    assert retry_policy("debug:fail").base_delay == 0.2
    assert retry_policy("media:probe") is DEFAULT_RETRY
    assert retry_policy("no:such") is DEFAULT_RETRY


def test_parameters_are_the_registry_s_models() -> None:
    assert PARAMETERS == {name: tool.parameters for name, tool in REGISTRY.items()}
