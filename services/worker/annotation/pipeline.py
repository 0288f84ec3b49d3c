"""Annotation pipelines: the "application" of a GATE Cloud-compatible job.

GATE itself is not used. An application is a ZIP holding `pipeline.json` at its root (or
inside a single top-level folder, as zipping a directory often makes) and the list files it
names::

    {"name": "People and places",
     "description": "optional free text",
     "defaultSelectors": [":Person", ":Location"],
     "gazetteers": [{"list": "lists/people.lst", "type": "Person", "set": "",
                     "caseSensitive": false, "features": {"kind": "person"}}],
     "rules": [{"pattern": "\\\\b(1[89]|20)\\\\d\\\\d\\\\b", "type": "Year", "set": "Dates",
                "flags": ["IGNORECASE"], "group": 0, "features": {"value": "$0"}}]}

Only `name` is required, and each gazetteer needs `list` and `type`, each rule `pattern` and
`type`; `set` defaults to "" (the default annotation set). `defaultSelectors` (a list or
a comma-separated string) defaults to every set:Type the pipeline produces. Unknown keys are
errors, so a typo never silently does nothing. List files are described in `gazetteer`,
rules and their `$1`/`$name` feature templates in `rules`. List paths are relative to the
folder of `pipeline.json`, with `/` separators and no `..`.

Each document gets one annotation per match; ids are unique in the document and follow
document order (by start, then longest first, then pipeline order). Reading a ZIP never
trusts its headers: members are read in chunks against size limits, and only the members
the pipeline names are read at all."""

from __future__ import annotations

import io
import json
import posixpath
import re
import zipfile
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

from services.worker.annotation.gazetteer import Gazetteer, ListFormatError, parse_list
from services.worker.annotation.model import AnnotatedDocument, Annotation
from services.worker.annotation.rules import Rule, RuleError
from services.worker.annotation.selectors import parse_selectors

PIPELINE_FILE = "pipeline.json"
MAX_MEMBERS = 10_000
MAX_MEMBER_BYTES = 32 * 1024 * 1024
MAX_TOTAL_BYTES = 128 * 1024 * 1024

_TYPE_NAME = re.compile(r"[A-Za-z_][\w.-]*", re.ASCII)
_TOP_KEYS = {"name", "description", "defaultSelectors", "gazetteers", "rules"}
_GAZETTEER_KEYS = {"list", "type", "set", "caseSensitive", "features"}
_RULE_KEYS = {"pattern", "type", "set", "flags", "group", "features"}

Matcher = Gazetteer | Rule


class PipelineError(ValueError):
    """The application cannot be loaded; the message names the file and why."""


def _check(ok: bool, where: str, why: str) -> None:
    if not ok:
        raise PipelineError(f"{where}: {why}")


def _string(obj: dict[str, Any], key: str, where: str, default: str | None = None) -> str:
    value = obj.get(key, default)
    if not isinstance(value, str):
        raise PipelineError(f"{where}: {key!r} " + ("must be a string" if key in obj
                                                    else "is missing"))
    return value


def _features(obj: dict[str, Any], where: str) -> dict[str, str]:
    features = obj.get("features", {})
    _check(isinstance(features, dict) and all(
        isinstance(k, str) and k and isinstance(v, str) for k, v in features.items()),
        where, "'features' must be an object of non-empty names to string values")
    return dict(features)


def _type(obj: dict[str, Any], where: str) -> str:
    """An annotation type; it must also serve as an XML element name (inline XML)."""
    value = _string(obj, "type", where)
    _check(bool(_TYPE_NAME.fullmatch(value)), where,
           f"'type' {value!r} must be a letter or _ then letters, digits, _, . or -")
    return value


def _set(obj: dict[str, Any], where: str) -> str:
    """An annotation set name: "" (the default set) or one that a selector can name."""
    value = _string(obj, "set", where, "")
    _check(not any(ch.isspace() or ch in ":," for ch in value), where,
           f"'set' {value!r} must not hold blanks, ':' or ','")
    return value


def _safe_path(path: str, where: str) -> str:
    """A member path relative to the application folder, refusing any way out of it."""
    _check(bool(path) and "\\" not in path and "\0" not in path and not path.startswith("/")
           and ":" not in path.split("/")[0], where, f"bad path {path!r}")
    normal = posixpath.normpath(path)
    _check(normal != ".." and not normal.startswith("../") and normal != ".", where,
           f"path {path!r} leaves the application folder")
    return normal


class Pipeline:
    """Gazetteers and rules, run in their order over a document's text."""

    def __init__(self, name: str, default_selectors: tuple[str, ...],
                 matchers: tuple[Matcher, ...]) -> None:
        self.name = name
        self.default_selectors = default_selectors
        self.matchers = matchers

    @classmethod
    def from_zip(cls, data: bytes) -> Pipeline:
        """Load an application ZIP; PipelineError says which file is wrong and why."""
        try:
            archive = zipfile.ZipFile(io.BytesIO(data))
        except (zipfile.BadZipFile, OSError, ValueError) as error:
            raise PipelineError(f"application: not a readable ZIP file ({error})") from None
        with archive:
            infos = archive.infolist()
            _check(len(infos) <= MAX_MEMBERS, "application", f"more than {MAX_MEMBERS} files")
            members = {info.filename: info for info in infos if not info.is_dir()}
            base = _find_base(members)
            budget = [MAX_TOTAL_BYTES]

            def read(path: str) -> bytes:
                name = base + path
                _check(name in members, name, "no such file in the application ZIP")
                return _read_member(archive, members[name], budget)

            return cls._load(read, base)

    @classmethod
    def from_directory(cls, path: str | Path) -> Pipeline:
        """Load an application from an unpacked folder (handy for tests and examples)."""
        root = Path(path).resolve()

        def read(member: str) -> bytes:
            file = (root / member).resolve()
            _check(file.is_relative_to(root) and file.is_file(), member,
                   f"no such file in {root}")
            _check(file.stat().st_size <= MAX_MEMBER_BYTES, member,
                   f"larger than {MAX_MEMBER_BYTES} bytes")
            return file.read_bytes()

        return cls._load(read, "")

    @classmethod
    def _load(cls, read: Callable[[str], bytes], base: str) -> Pipeline:
        where = base + PIPELINE_FILE
        try:
            spec = json.loads(read(PIPELINE_FILE).decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as error:
            raise PipelineError(f"{where}: not valid UTF-8 JSON ({error})") from None
        except RecursionError:
            raise PipelineError(f"{where}: JSON nested too deeply") from None
        _check(isinstance(spec, dict), where, "must hold a JSON object")
        unknown = sorted(set(spec) - _TOP_KEYS)
        _check(not unknown, where, f"unknown keys {unknown}; known: {sorted(_TOP_KEYS)}")
        name = _string(spec, "name", where)
        _check(bool(name.strip()), where, "'name' is empty")
        _string(spec, "description", where, "")
        matchers: list[Matcher] = []
        for kind, keys in (("gazetteers", _GAZETTEER_KEYS), ("rules", _RULE_KEYS)):
            items = spec.get(kind, [])
            _check(isinstance(items, list), where, f"{kind!r} must be a list")
            for index, item in enumerate(items):
                at = f"{where}: {kind}[{index}]"
                _check(isinstance(item, dict), at, "must be an object")
                unknown = sorted(set(item) - keys)
                _check(not unknown, at, f"unknown keys {unknown}; known: {sorted(keys)}")
                build = _gazetteer if kind == "gazetteers" else _rule
                matchers.append(build(item, at, read, base))
        return cls(name, _default_selectors(spec, matchers, where), tuple(matchers))

    def annotate(self, name: str, text: str) -> AnnotatedDocument:
        """Run every gazetteer and rule over `text`."""
        found = [
            (start, -end, order, matcher.set, matcher.type, features)
            for order, matcher in enumerate(self.matchers)
            for start, end, features in matcher.find(text)
        ]
        found.sort(key=lambda f: f[:3])
        annotations = tuple(
            Annotation(index, set_, type_, start, -neg_end, features)
            for index, (start, neg_end, _, set_, type_, features) in enumerate(found))
        return AnnotatedDocument(name, text, annotations)


def _find_base(members: dict[str, zipfile.ZipInfo]) -> str:
    """"" when pipeline.json is at the ZIP's root, "folder/" when in one top-level folder."""
    if PIPELINE_FILE in members:
        return ""
    nested = sorted(name for name in members if name.count("/") == 1
                    and name.endswith("/" + PIPELINE_FILE) and not name.startswith("__MACOSX/"))
    _check(bool(nested), "application", f"no {PIPELINE_FILE} at the root of the ZIP or in "
           "a single top-level folder")
    _check(len(nested) == 1, "application", f"several {PIPELINE_FILE} files: {nested}")
    return nested[0][: -len(PIPELINE_FILE)]


def _read_member(archive: zipfile.ZipFile, info: zipfile.ZipInfo, budget: list[int]) -> bytes:
    """Read a member in chunks, stopping at the size limits whatever its header claims."""
    limit = min(MAX_MEMBER_BYTES, budget[0])
    chunks: list[bytes] = []
    size = 0
    try:
        with archive.open(info) as stream:
            while chunk := stream.read(64 * 1024):
                size += len(chunk)
                _check(size <= limit, info.filename,
                       f"larger than the limit of {limit} bytes uncompressed")
                chunks.append(chunk)
    except (zipfile.BadZipFile, zlib.error, RuntimeError, NotImplementedError, OSError,
            EOFError) as error:
        raise PipelineError(f"{info.filename}: cannot be read ({error})") from None
    budget[0] -= size
    return b"".join(chunks)


def _gazetteer(item: dict[str, Any], at: str, read: Callable[[str], bytes],
               base: str) -> Gazetteer:
    path = _safe_path(_string(item, "list", at), at)
    case_sensitive = item.get("caseSensitive", False)
    _check(isinstance(case_sensitive, bool), at, "'caseSensitive' must be true or false")
    try:
        entries = parse_list(read(path).decode("utf-8"))
    except UnicodeDecodeError as error:
        raise PipelineError(f"{base}{path}: not UTF-8 ({error})") from None
    except ListFormatError as error:
        raise PipelineError(f"{base}{path}: {error}") from None
    return Gazetteer(_type(item, at), _set(item, at), case_sensitive,
                     _features(item, at), entries)


def _rule(item: dict[str, Any], at: str, read: Callable[[str], bytes], base: str) -> Rule:
    flags = item.get("flags", [])
    _check(isinstance(flags, list) and all(isinstance(f, str) for f in flags), at,
           "'flags' must be a list of strings")
    group = item.get("group", 0)
    _check(isinstance(group, str | int) and not isinstance(group, bool), at,
           "'group' must be a group number or name")
    try:
        return Rule.build(_type(item, at), _set(item, at),
                          _string(item, "pattern", at), flags, group, _features(item, at))
    except RuleError as error:
        raise PipelineError(f"{at}: {error}") from None


def _default_selectors(spec: dict[str, Any], matchers: list[Matcher],
                       where: str) -> tuple[str, ...]:
    raw = spec.get("defaultSelectors")
    if raw is None:
        produced = dict.fromkeys(f"{m.set}:{m.type}" for m in matchers)
        return tuple(produced)
    _check(isinstance(raw, str) or (isinstance(raw, list) and all(
        isinstance(s, str) for s in raw)), where,
        "'defaultSelectors' must be a list of strings or a comma-separated string")
    try:
        return tuple(str(s) for s in parse_selectors(raw))
    except ValueError as error:
        raise PipelineError(f"{where}: defaultSelectors: {error}") from None
