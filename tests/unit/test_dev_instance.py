"""`conveyor dev` on a broker it shares: each instance's queues are its own."""

from __future__ import annotations

from pathlib import Path

import pytest

from services.cli import build_parser
from services.dev.main import instance_prefix


def test_each_data_directory_is_an_instance_of_its_own(tmp_path: Path) -> None:
    first, second = tmp_path / "one", tmp_path / "two"
    assert instance_prefix(first) != instance_prefix(second)
    assert instance_prefix(first) == instance_prefix(tmp_path / "x" / ".." / "one")
    assert instance_prefix(first).startswith("dev-")
    assert instance_prefix(first).endswith(".")


def test_dev_takes_zero_workers_and_an_ephemeral_instance_has_no_default_directory() -> None:
    args = build_parser().parse_args(["dev", "--workers", "0", "--ephemeral"])
    assert args.workers == 0
    assert args.ephemeral
    assert args.data_dir is None
    assert build_parser().parse_args(["dev"]).ephemeral is False


def test_dev_refuses_a_negative_number_of_workers(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        build_parser().parse_args(["dev", "--workers", "-1"])
    assert "--workers: -1 must be 0 or more" in capsys.readouterr().err
