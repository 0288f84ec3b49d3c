"""Request bodies nested too deeply are refused before anything recurses over them."""

from __future__ import annotations

from typing import Any

import pytest

from shared.nesting import MAX_BODY_DEPTH, json_depth
from shared.xmlforms import XmlBodyError, from_xml


def nested(levels: int) -> Any:
    value: Any = "leaf"
    for level in range(levels):
        value = [value] if level % 2 else {"k": value}
    return value


@pytest.mark.parametrize(("value", "depth"), [
    ("x", 0), (1, 0), ({}, 1), ([], 1), ({"a": [1, {"b": 2}]}, 3), ([[], [[[]]]], 4),
])
def test_json_depth(value: Any, depth: int) -> None:
    assert json_depth(value) == depth


def test_json_depth_of_a_very_deep_value_does_not_recurse() -> None:
    assert json_depth(nested(20_000)) == 20_000


def test_xml_at_the_limit_is_read_and_past_it_refused() -> None:
    def body(levels: int) -> bytes:
        # <job> is the first level.
        return (b"<job>" + b"<a>" * (levels - 2) + b"<b>x</b>" + b"</a>" * (levels - 2)
                + b"</job>")

    fields = from_xml(body(MAX_BODY_DEPTH), "job")
    assert json_depth(fields) == MAX_BODY_DEPTH - 1
    with pytest.raises(XmlBodyError, match="nested deeper than 32 levels"):
        from_xml(body(MAX_BODY_DEPTH + 1), "job")
    with pytest.raises(XmlBodyError, match="nested deeper"):
        from_xml(body(10_000), "job")
