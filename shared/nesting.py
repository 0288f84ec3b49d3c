"""How deeply a request body may nest. Python's JSON decoder and the XML reader recurse, so a
body nested a thousand levels deep would end in a RecursionError (a 500); and MongoDB keeps
documents at most 100 levels deep. No job, spec or setting needs more than a few levels."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from typing import TypeVar

MAX_BODY_DEPTH = 32
T = TypeVar("T")


def tree_depth(root: T, children: Callable[[T], Iterable[T]]) -> int:
    """Levels of `root` and what lies below it, counted without recursion."""
    deepest = 0
    pending = [(root, 1)]
    while pending:
        node, level = pending.pop()
        deepest = max(deepest, level)
        pending.extend((child, level + 1) for child in children(node))
    return deepest


_JSON_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"')  # unrolled: runs of plain bytes at once
_NOT_BRACKETS = bytes(set(range(256)) - set(b"[]{}"))
_INNERMOST = re.compile(rb"\[\]|\{\}")


def json_nesting_exceeds(raw: bytes, limit: int = MAX_BODY_DEPTH) -> bool:
    """Whether valid JSON text nests objects and arrays deeper than `limit`. Worked on the
    text at C speed (strings dropped, then innermost bracket pairs removed once per level),
    so a large flat or wide body costs a few passes over its bytes, not a walk of its
    values."""
    brackets = _JSON_STRING.sub(b"", raw).translate(None, _NOT_BRACKETS)
    for _ in range(limit):
        if not brackets:
            return False
        brackets = _INNERMOST.sub(b"", brackets)  # one level: pairs exposed now wait
    return bool(brackets)


def too_deep_message() -> str:
    return f"is nested deeper than {MAX_BODY_DEPTH} levels"
