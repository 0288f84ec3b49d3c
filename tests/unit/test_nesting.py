"""Request bodies nested too deeply are refused before anything recurses over them."""

from __future__ import annotations

import json
from typing import Any

import pytest

from shared.nesting import MAX_BODY_DEPTH, json_nesting_exceeds, tree_depth
from shared.xmlforms import XmlBodyError, from_xml


def nested(levels: int) -> Any:
    value: Any = "leaf"
    for level in range(levels):
        value = [value] if level % 2 else {"k": value}
    return value


@pytest.mark.parametrize(("value", "depth"), [
    ("x", 0), (1, 0), ({}, 1), ([], 1), ({"a": [1, {"b": 2}]}, 3), ([[], [[[]]]], 4),
    (nested(MAX_BODY_DEPTH), MAX_BODY_DEPTH), (nested(MAX_BODY_DEPTH + 1), MAX_BODY_DEPTH + 1),
    # Brackets and quotes inside strings are not nesting.
    ({"a": "[[[{{{", "b": ['\\"]]]', "\\", "\"{"]}, 2),
    ([0] * 100_000, 1), ([[n] for n in range(1000)], 2),
])
def test_json_nesting_is_measured_on_the_text(value: Any, depth: int) -> None:
    raw = json.dumps(value).encode()
    assert json_nesting_exceeds(raw, depth - 1) is (depth > 0)
    assert not json_nesting_exceeds(raw, max(depth, 1))
    indented = json.dumps(value, indent=2, ensure_ascii=False).encode()
    assert not json_nesting_exceeds(indented, max(depth, 1))


def test_a_very_deep_body_is_measured_without_recursion() -> None:
    raw = b"[" * 20_000 + b"]" * 20_000
    assert json_nesting_exceeds(raw)
    assert tree_depth(nested(20_000), lambda v: list(v.values()) if isinstance(v, dict)
                      else v if isinstance(v, list) else []) == 20_001


def test_xml_at_the_limit_is_read_and_past_it_refused() -> None:
    def body(levels: int) -> bytes:
        # <job> is the first level.
        return (b"<job>" + b"<a>" * (levels - 2) + b"<b>x</b>" + b"</a>" * (levels - 2)
                + b"</job>")

    fields = from_xml(body(MAX_BODY_DEPTH), "job")
    assert not json_nesting_exceeds(json.dumps(fields).encode(), MAX_BODY_DEPTH - 1)
    with pytest.raises(XmlBodyError, match="nested deeper than 32 levels"):
        from_xml(body(MAX_BODY_DEPTH + 1), "job")
    with pytest.raises(XmlBodyError, match="nested deeper"):
        from_xml(body(10_000), "job")
