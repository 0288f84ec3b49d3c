"""Gazetteer lists: parsing `.lst` files and finding their entries in text.

A list is UTF-8 text, one entry per line; after the entry, optional TAB-separated
`key=value` features for that entry. Blank lines and lines starting with `#` are ignored.
Runs of blanks inside an entry match any run of whitespace in the text ("New York" matches
"New\\nYork"). An entry matches only as a whole word: it is neither preceded nor followed by
a letter, digit or underscore. At any position the longest entry wins, and matches do not
overlap within one list. Matching is case-insensitive unless the list is case-sensitive.

The entries are compiled into one regular expression shaped like a trie (shared prefixes
are factored out), so a list of thousands of entries costs about as much as a short one."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field

MAX_ENTRY_CHARS = 200
_BLANKS = re.compile(r"\s+")
_Trie = dict[str, "_Trie"]
_END = ""  # the key marking the end of an entry in a trie node


class ListFormatError(ValueError):
    """A line of a list cannot be read; the message gives the line number."""


def parse_list(text: str) -> dict[str, dict[str, str]]:
    """Entries of a `.lst` file, each with its own features, in file order."""
    entries: dict[str, dict[str, str]] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        entry, *pairs = line.split("\t")
        entry = " ".join(entry.split())
        if not entry:
            raise ListFormatError(f"line {number}: the entry before the TAB is empty")
        if len(entry) > MAX_ENTRY_CHARS:
            raise ListFormatError(f"line {number}: entry longer than {MAX_ENTRY_CHARS} chars")
        features: dict[str, str] = {}
        for pair in pairs:
            if not pair.strip():
                continue
            key, sep, value = pair.partition("=")
            if not sep or not key.strip():
                raise ListFormatError(
                    f"line {number}: feature {pair!r} is not key=value")
            features[key.strip()] = value.strip()
        entries.setdefault(entry, {}).update(features)
    return entries


def _units(entry: str) -> list[str]:
    """An entry as trie keys: one per character, one blank for each run of blanks."""
    return [" " if ch.isspace() else ch for ch in entry]


def _pattern(node: _Trie) -> str:
    """The regex for a trie node; children before the end marker, so the longest wins."""
    branches = []
    ends = False
    for key in sorted(node):
        if key == _END:
            ends = True
            continue
        head = r"\s+" if key == " " else re.escape(key)
        branches.append(head + _pattern(node[key]))
    if not branches:
        return ""
    if ends:
        return "(?:" + "|".join(branches) + ")?"
    return branches[0] if len(branches) == 1 else "(?:" + "|".join(branches) + ")"


@dataclass
class Gazetteer:
    """One list of entries that produce annotations of one type in one set."""

    type: str
    set: str
    case_sensitive: bool
    features: dict[str, str]
    entries: dict[str, dict[str, str]]
    _regex: re.Pattern[str] = field(init=False, repr=False)
    _lookup: dict[str, dict[str, str]] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        trie: _Trie = {}
        self._lookup = {}
        for entry, features in self.entries.items():
            key = self._key(entry)
            self._lookup.setdefault(key, {}).update(features)
            node = trie
            for unit in _units(key):
                node = node.setdefault(unit, {})
            node[_END] = {}
        flags = 0 if self.case_sensitive else re.IGNORECASE
        body = _pattern(trie) or r"(?!)"
        self._regex = re.compile(rf"(?<!\w){body}(?!\w)", flags)

    def _key(self, text: str) -> str:
        text = _BLANKS.sub(" ", text)
        return text if self.case_sensitive else text.lower()

    def find(self, text: str) -> Iterator[tuple[int, int, dict[str, str]]]:
        """(start, end, features) of each match, left to right."""
        for match in self._regex.finditer(text):
            if match.end() == match.start():
                continue
            entry_features = self._lookup.get(self._key(match.group()), {})
            yield match.start(), match.end(), {**self.features, **entry_features}
