"""Finding secrets inside text, in time linear in its length: the password of a URL's userinfo
(`https://user:PASS@host`, `https://:PASS@host`) and the values of secret-looking query
parameters (`?token=…`, `X-Amz-Signature=…`, `sig=…`, `apikey=…`). Masking, sealing (see
`shared.secrets`) and the worker's list of values to hide in free text all start from the
spans found here, so that what is sealed at rest is exactly what answers mask.

Every pattern here starts with a literal and ends at the first delimiter, so that no input
makes it backtrack more than once over a run of characters (an earlier pattern took 99 s on
a 96,000-letter URL)."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any
from urllib.parse import unquote

REDACTED = "***"
# Keys whose values are secrets. A `credentials` object is walked into, so that its
# non-secret fields (an endpoint, a region) stay visible.
SECRET_KEY = re.compile(
    r"secret|password|passwd|token|access_key|api_?key|private_key|signature", re.I)
# `://`, then the userinfo up to its last `@` before the host: the greedy run stops at the
# first character a userinfo cannot hold, and backtracks over that one run only.
_USERINFO = re.compile(r"://([^/?#\s\"'<>]*)@")
# A query parameter: a separator, a bounded name, `=`, the value up to the next separator.
_PARAMETER = re.compile(r"[?&;]([A-Za-z0-9_.~-]{1,64})=([^&#;\s\"'<>]*)")
_SECRET_PARAMETER = re.compile(
    r"token|sig|secret|pass|pwd|credential|api[_-]?key|auth|session|^key$|^code$", re.I)
Span = tuple[int, int]


def secret_spans(text: str) -> list[Span]:
    """Where `text` holds secrets, as (start, end) pairs in order and not overlapping."""
    spans: list[Span] = []
    if "://" in text:
        for match in _USERINFO.finditer(text):
            colon = match.group(1).find(":")
            if colon >= 0 and match.end(1) > match.start(1) + colon + 1:
                spans.append((match.start(1) + colon + 1, match.end(1)))
    if "=" in text:
        for match in _PARAMETER.finditer(text):
            if match.end(2) > match.start(2) and _SECRET_PARAMETER.search(match.group(1)):
                spans.append(match.span(2))
    if len(spans) < 2:
        return spans
    spans.sort()
    merged = [spans[0]]
    for start, end in spans[1:]:
        if start < merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged


def replace_spans(text: str, spans: list[Span], by: Callable[[str], str]) -> str:
    if not spans:
        return text
    pieces: list[str] = []
    last = 0
    for start, end in spans:
        pieces += [text[last:start], by(text[start:end])]
        last = end
    pieces.append(text[last:])
    return "".join(pieces)


def mask_text(text: str) -> str:
    """`text` with every secret found in it replaced by `***`."""
    return replace_spans(text, secret_spans(text), lambda _: REDACTED)


def redact(value: Any) -> Any:
    """A copy of `value` fit to show: values under credential-like keys masked, and secrets
    inside strings (URL passwords, secret query parameters) too."""
    if isinstance(value, dict):
        return {
            key: (REDACTED if SECRET_KEY.search(str(key)) and value_ not in (None, "")
                  else redact(value_))
            for key, value_ in value.items()
        }
    if isinstance(value, list):
        return [redact(item) for item in value]
    if isinstance(value, str):
        return mask_text(value)
    return value


def secret_values(value: Any) -> list[str]:
    """Every secret in `value` (strings under credential-like keys, and the secret parts of
    other strings, as written and percent-decoded), longest first: to mask in free text
    such as a tool's log line that repeats one."""
    found: set[str] = set()

    def walk(item: Any, secret: bool) -> None:
        if isinstance(item, dict):
            for key, inner in item.items():
                walk(inner, secret or bool(SECRET_KEY.search(str(key))))
        elif isinstance(item, list):
            for inner in item:
                walk(inner, secret)
        elif isinstance(item, str):
            if secret:
                found.add(item)
            else:
                for start, end in secret_spans(item):
                    found.update({item[start:end], unquote(item[start:end])})

    walk(value, False)
    return sorted((s for s in found if s), key=len, reverse=True)


MAX_LITERALS = 64


def redact_text(text: str, secrets: list[str]) -> str:
    """`text` with each of `secrets` (from `secret_values`, longest first; the first
    MAX_LITERALS of them: each costs a pass) and any secret the patterns find masked."""
    for secret in secrets[:MAX_LITERALS]:
        if secret in text:
            text = text.replace(secret, REDACTED)
    return mask_text(text)
