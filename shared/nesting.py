"""How deeply a request body may nest. Python's JSON decoder and the XML reader recurse, so a
body nested a thousand levels deep would end in a RecursionError (a 500); and MongoDB keeps
documents at most 100 levels deep. No job, spec or setting needs more than a few levels."""

from __future__ import annotations

from typing import Any

MAX_BODY_DEPTH = 32


def json_depth(value: Any) -> int:
    """Levels of objects and arrays in a decoded JSON value (a scalar is 0), counted without
    recursion."""
    deepest = 0
    pending: list[tuple[Any, int]] = [(value, 0)]
    while pending:
        item, depth = pending.pop()
        if isinstance(item, dict):
            children: Any = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        deepest = max(deepest, depth + 1)
        pending.extend((child, depth + 1) for child in children)
    return deepest


def too_deep_message() -> str:
    return f"is nested deeper than {MAX_BODY_DEPTH} levels"
