"""Annotations and annotated documents.

Offsets are Python `str` indices (code points) into the document text, `[start, end)`;
`""` is the default (unnamed) annotation set."""

from __future__ import annotations

from dataclasses import dataclass

DEFAULT_SET = ""


@dataclass(frozen=True)
class Annotation:
    id: int
    set: str
    type: str
    start: int
    end: int
    features: dict[str, str]


@dataclass(frozen=True)
class AnnotatedDocument:
    name: str
    text: str
    annotations: tuple[Annotation, ...]
