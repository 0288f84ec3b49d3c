"""How deeply a request body may nest. Python's JSON decoder and the XML reader recurse, so a
body nested a thousand levels deep would end in a RecursionError (a 500); and MongoDB keeps
documents at most 100 levels deep. No job, spec or setting needs more than a few levels."""

from __future__ import annotations

import re
from collections import deque
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
    values. Fewer opening brackets than `limit` in the whole text (most bodies) settle it
    at once."""
    if raw.count(b"[") + raw.count(b"{") <= limit:
        return False
    brackets = _JSON_STRING.sub(b"", raw).translate(None, _NOT_BRACKETS)
    for _ in range(limit):
        if not brackets:
            return False
        brackets = _INNERMOST.sub(b"", brackets)  # one level: pairs exposed now wait
    return bool(brackets)


def too_deep_message() -> str:
    return f"is nested deeper than {MAX_BODY_DEPTH} levels"


# `\ud800`-`\udfff` escapes: a pair is one character once decoded, a lone one stays a
# surrogate that no UTF-8 encoder (the store's, the answer's) takes.
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89abcdefABCDEF]")
_SURROGATE = re.compile("[\ud800-\udfff]")


def first_field(value: object, bad: Callable[[str], bool]) -> str | None:
    """The dotted path (`tasks.0.parameters.source`) of the first string in decoded JSON
    `value`, breadth first, for which `bad` holds; a bad key names its object."""
    pending: deque[tuple[object, str]] = deque([(value, "")])
    while pending:
        node, path = pending.popleft()
        if isinstance(node, str):
            if bad(node):
                return path or "body"
        elif isinstance(node, dict):
            for key, item in node.items():
                if bad(key):
                    return path or "body"
                pending.append((item, f"{path}.{key}" if path else key))
        elif isinstance(node, list):
            pending.extend((item, f"{path}.{index}" if path else str(index))
                           for index, item in enumerate(node))
    return None


def lone_surrogate_field(raw: bytes, value: object) -> str | None:
    """The field of decoded JSON `value` that holds a lone surrogate, or None. Only walked
    when the text has such an escape at all."""
    if not _SURROGATE_ESCAPE.search(raw):
        return None
    return first_field(value, lambda text: _SURROGATE.search(text) is not None)


MAX_BODY_VALUES = 50_000
# A JSON string, or a character that starts or separates values outside strings.
_TOKEN = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"|[,:\[{]')


def json_values_exceed(raw: bytes, limit: int = MAX_BODY_VALUES) -> bool:
    """Whether JSON text holds more than about `limit` values. Decoding costs about a
    microsecond a value in one call that holds the interpreter, so a 4 MiB body of tiny
    values would stall every other request for a third of a second (and validating it,
    longer). Counting its separators first is cheap: a count of the raw bytes when that
    is already under the limit, else a walk of its tokens that other threads interleave."""
    if sum(raw.count(mark) for mark in (b",", b":", b"[", b"{")) <= limit:
        return False
    count = 0
    for match in _TOKEN.finditer(raw):
        if match.end() - match.start() == 1:
            count += 1
            if count > limit:
                return True
    return False


def too_many_values_message() -> str:
    return f"holds more than {MAX_BODY_VALUES} values (objects, arrays, strings, numbers)"
