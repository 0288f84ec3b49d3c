"""Annotation selector expressions (seed §7): set:Type, :Type, set:, :."""

from __future__ import annotations

import pytest

from services.worker.annotation.model import Annotation
from services.worker.annotation.selectors import Selector, parse_selectors, select

ANNOTATIONS = [
    Annotation(0, "", "Person", 0, 3, {}),
    Annotation(1, "", "Location", 4, 10, {}),
    Annotation(2, "Results", "Person", 0, 3, {}),
    Annotation(3, "Results", "Entity", 11, 15, {}),
    Annotation(4, "combined", "Entity", 11, 15, {}),
]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (":Person", (Selector("", "Person"),)),
        ("Results:", (Selector("Results", None),)),
        (":", (Selector("", None),)),
        ("combined:Entity", (Selector("combined", "Entity"),)),
        (":Person, :Organisation, combined:Entity",
         (Selector("", "Person"), Selector("", "Organisation"), Selector("combined", "Entity"))),
        (" :Person ,, :Person , ", (Selector("", "Person"),)),
        ("", ()),
        ([":Person", "Results:, :"],
         (Selector("", "Person"), Selector("Results", None), Selector("", None))),
    ],
)
def test_parse(text: str | list[str], expected: tuple[Selector, ...]) -> None:
    assert parse_selectors(text) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("Person", "annotation selector 'Person' has no ':'"),
        (":Person, Location", "annotation selector 'Location' has no ':'"),
        ("a:b:c", "more than one ':'"),
        ("my set:Person", "the set name 'my set' has a blank"),
        (":Per son", "the type 'Per son' has a blank"),
    ],
)
def test_malformed_selectors_are_value_errors(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_selectors(text)


@pytest.mark.parametrize(
    ("text", "ids"),
    [
        (":Person", [0]),
        (":", [0, 1]),
        ("Results:", [2, 3]),
        ("combined:Entity, :Location", [1, 4]),
        (":Entity", []),
        ("nowhere:", []),
    ],
)
def test_select_keeps_matching_annotations_in_order(text: str, ids: list[int]) -> None:
    assert [a.id for a in select(ANNOTATIONS, parse_selectors(text))] == ids


def test_selectors_print_back_as_expressions() -> None:
    assert [str(s) for s in parse_selectors(":Person, Results:, :")] == [
        ":Person", "Results:", ":"]
