"""Archive limits: the budget an archive may unpack to, and the count of bytes really
written (an archive can declare less than it holds)."""

import io

import pytest

from services.worker.context import ToolError
from services.worker.tools.files import (
    RATIO_FLOOR,
    Limits,
    OverBudgetError,
    copy_within,
    safe_name,
)

LIMITS = Limits(max_bytes=10 * 1024**3, max_entries=100, max_ratio=200)


def test_the_budget_is_the_ratio_times_the_archive_above_a_floor() -> None:
    assert LIMITS.budget(1024**2) == 200 * 1024**2
    assert LIMITS.budget(100) == RATIO_FLOOR  # small archives of zeros stay fine
    assert LIMITS.budget(1024**3) == 10 * 1024**3  # the size limit still caps it


def test_the_refusal_names_the_limit_that_was_reached() -> None:
    assert "more than 200 times its own 1048576 bytes" in str(LIMITS.refusal("9", 1024**2))
    assert "the limit of 10737418240" in str(LIMITS.refusal("9", 1024**3))


def test_bytes_written_are_counted_whatever_the_entry_declared() -> None:
    writer = io.BytesIO()
    spent = copy_within(io.BytesIO(b"x" * 3000), writer, spent=1000, budget=4000)
    assert spent == 4000
    assert len(writer.getvalue()) == 3000
    with pytest.raises(OverBudgetError):
        copy_within(io.BytesIO(b"x" * 3001), io.BytesIO(), spent=1000, budget=4000)


@pytest.mark.parametrize("name", ["a\x00b", "dir/\x1b[31mred", "bad\udcff.txt", "x\x7f"])
def test_entry_names_with_control_characters_are_refused(name: str) -> None:
    with pytest.raises(ToolError, match="must not contain control characters"):
        safe_name(name)
