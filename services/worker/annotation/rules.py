"""Regular-expression rules: each match of a Python regex becomes an annotation.

Patterns are the user's, so they run on the `regex` module (the syntax of `re`): its engine
avoids most catastrophic backtracking, and a time limit per rule and document
(`RULE_SECONDS`) ends what remains with `RuleTimeout`, failing that document alone.

Feature values are templates: `$0` is the whole match, `$1` the first group, `$name` the
group called name, `${name}` the same when letters follow, and `$$` a literal `$`. A group
that did not take part in the match gives "". The annotation covers group `group` of the
match (0, the whole match, by default); empty matches make no annotation."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

import regex as rx

from shared.numbers import whole_number

FLAGS = {
    "IGNORECASE": rx.IGNORECASE,
    "MULTILINE": rx.MULTILINE,
    "DOTALL": rx.DOTALL,
    "VERBOSE": rx.VERBOSE,
    "ASCII": rx.ASCII,
}
RULE_SECONDS = 10.0
_REFERENCE = re.compile(r"\$(?:\$|(\d+)|\{(\w+)\}|([A-Za-z_]\w*))")


class RuleError(ValueError):
    """A rule is not valid; the message says why."""


class RuleTimeout(ValueError):
    """A rule ran longer than RULE_SECONDS over one document."""


def _group_of(pattern: rx.Pattern[str], name: str) -> int | str:
    number = whole_number(name)
    if number is not None:
        if number > pattern.groups:
            raise RuleError(f"${name} refers to a group the pattern does not have "
                            f"(it has {pattern.groups})")
        return number
    if name not in pattern.groupindex:
        raise RuleError(f"${name} refers to a group the pattern does not name")
    return name


@dataclass(frozen=True)
class Template:
    """A feature value with `$` references, split into literals and group references."""

    parts: tuple[str | int, ...]  # a str is literal text, an int a group number

    @classmethod
    def parse(cls, value: str, pattern: rx.Pattern[str]) -> Template:
        parts: list[str | int] = []
        position = 0
        for ref in _REFERENCE.finditer(value):
            parts.append(value[position:ref.start()])
            name = ref.group(1) or ref.group(2) or ref.group(3)
            if name is None:
                parts.append("$")
            else:
                group = _group_of(pattern, name)
                parts.append(group if isinstance(group, int) else pattern.groupindex[group])
            position = ref.end()
        parts.append(value[position:])
        return cls(tuple(part for part in parts if part != ""))

    def expand(self, match: rx.Match[str]) -> str:
        return "".join(
            part if isinstance(part, str) else (match.group(part) or "") for part in self.parts)


@dataclass(frozen=True)
class Rule:
    type: str
    set: str
    regex: rx.Pattern[str]
    group: int
    features: dict[str, Template]

    @classmethod
    def build(cls, type_: str, set_: str, pattern: str, flags: list[str], group: int | str,
              features: dict[str, str]) -> Rule:
        value = 0
        for flag in flags:
            if flag not in FLAGS:
                raise RuleError(f"unknown flag {flag!r}; known: {', '.join(FLAGS)}")
            value |= FLAGS[flag]
        try:
            regex = rx.compile(pattern, value)
        except rx.error as error:
            raise RuleError(f"bad pattern {pattern!r}: {error}") from None
        number = _group_of(regex, str(group))
        return cls(type_, set_, regex,
                   number if isinstance(number, int) else regex.groupindex[number],
                   {key: Template.parse(text, regex) for key, text in features.items()})

    def find(self, text: str) -> Iterator[tuple[int, int, dict[str, str]]]:
        """(start, end, features) of each non-empty match, left to right."""
        try:
            matches = list(self.regex.finditer(text, timeout=RULE_SECONDS))
        except TimeoutError:
            raise RuleTimeout(f"rule for {self.type} ran longer than {RULE_SECONDS:g} s "
                              f"(pattern {self.regex.pattern[:100]!r})") from None
        for match in matches:
            start, end = match.span(self.group)
            if start < 0 or start == end:
                continue
            yield start, end, {key: t.expand(match) for key, t in self.features.items()}
