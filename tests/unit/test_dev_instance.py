"""`conveyor dev` on a broker it shares: each instance's queues are its own."""

from __future__ import annotations

from pathlib import Path

from services.dev.main import instance_prefix


def test_each_data_directory_is_an_instance_of_its_own(tmp_path: Path) -> None:
    first, second = tmp_path / "one", tmp_path / "two"
    assert instance_prefix(first) != instance_prefix(second)
    assert instance_prefix(first) == instance_prefix(tmp_path / "x" / ".." / "one")
    assert instance_prefix(first).startswith("dev-")
    assert instance_prefix(first).endswith(".")
