"""Numbers written by someone else (a query, a header, a file name, a tool's output)."""

from __future__ import annotations


def whole_number(raw: str) -> int | None:
    """`raw` as a number if it is written in ASCII digits, else None. (`str.isdigit` is
    true of `³` too, which `int` refuses, as it refuses more than 4300 digits.)"""
    if not (raw.isascii() and raw.isdigit()):
        return None
    try:
        return int(raw)
    except ValueError:
        return None
