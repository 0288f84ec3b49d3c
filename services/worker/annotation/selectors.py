"""Annotation selector expressions, as in GATE Cloud output specifications.

A selector is `set:Type`: `:Person` is Person in the default set, `Results:` every type in
the set Results, `:` everything in the default set. A list is comma-separated; blanks around
each item are ignored and empty items are skipped."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from services.worker.annotation.model import Annotation


@dataclass(frozen=True)
class Selector:
    set: str
    type: str | None  # None selects every type in the set

    def matches(self, annotation: Annotation) -> bool:
        return annotation.set == self.set and self.type in (None, annotation.type)

    def __str__(self) -> str:
        return f"{self.set}:{self.type or ''}"


def _parse_one(item: str) -> Selector:
    if ":" not in item:
        raise ValueError(
            f"annotation selector {item!r} has no ':'; write set:Type, :Type, set: or :")
    set_name, _, type_name = (part.strip() for part in item.partition(":"))
    if ":" in type_name:
        raise ValueError(f"annotation selector {item!r} has more than one ':'")
    for label, part in (("set name", set_name), ("type", type_name)):
        if any(ch.isspace() or ch == "," for ch in part):
            raise ValueError(f"annotation selector {item!r}: the {label} {part!r} has a blank")
    return Selector(set_name, type_name or None)


def parse_selectors(text: str | Sequence[str]) -> tuple[Selector, ...]:
    """Parse `":Person, Results:"` (or a sequence of such strings) into selectors.

    Raises ValueError naming the bad expression; duplicates are dropped, order is kept."""
    items = text.split(",") if isinstance(text, str) else [
        part for entry in text for part in entry.split(",")]
    selectors: list[Selector] = []
    for item in items:
        if not item.strip():
            continue
        selector = _parse_one(item.strip())
        if selector not in selectors:
            selectors.append(selector)
    return tuple(selectors)


def select(annotations: Iterable[Annotation], selectors: Sequence[Selector]) -> list[Annotation]:
    """The annotations any selector matches, in their original order."""
    return [a for a in annotations if any(s.matches(a) for s in selectors)]
