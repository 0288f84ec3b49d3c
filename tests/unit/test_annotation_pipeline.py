"""The annotation pipeline: loading applications (directory and ZIP) and matching."""

from __future__ import annotations

import io
import json
import time
import zipfile
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.worker.annotation import pipeline as pipeline_module
from services.worker.annotation.gazetteer import Gazetteer, parse_list
from services.worker.annotation.model import Annotation
from services.worker.annotation.pipeline import MAX_MEMBER_BYTES, Pipeline, PipelineError

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "gate" / "application"


def zip_app(files: dict[str, str | bytes], folder: str = "") -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, content in files.items():
            archive.writestr(folder + name, content)
    return buffer.getvalue()


def app(spec: dict[str, Any], **lists: str) -> bytes:
    files: dict[str, str | bytes] = {"pipeline.json": json.dumps(spec)}
    files.update({f"lists/{name}.lst": text for name, text in lists.items()})
    return zip_app(files)


def spans(annotations: tuple[Annotation, ...], text: str) -> list[tuple[str, str]]:
    return [(a.type, text[a.start:a.end]) for a in annotations]


def gazetteer_app(entries: str, **options: Any) -> Pipeline:
    spec = {"name": "t", "gazetteers": [{"list": "lists/g.lst", "type": "Thing", **options}]}
    return Pipeline.from_zip(app(spec, g=entries))


def test_example_application_finds_people_places_and_dates() -> None:
    pipeline = Pipeline.from_directory(EXAMPLE)
    text = (EXAMPLE.parent / "documents" / "nursing.txt").read_text(encoding="utf-8")

    document = pipeline.annotate("nursing.txt", text)

    assert pipeline.name == "People and places"
    assert pipeline.default_selectors == (":Person", ":Location", "Dates:")
    found = {(a.set, a.type, text[a.start:a.end]) for a in document.annotations}
    assert {("", "Person", "Florence Nightingale"), ("", "Location", "Scutari"),
            ("", "Location", "London"), ("Dates", "Date", "4 November 1854"),
            ("Dates", "Year", "1858")} <= found
    person = next(a for a in document.annotations if a.type == "Person")
    assert person.features == {"kind": "person", "gender": "female", "born": "1820"}
    date = next(a for a in document.annotations if a.type == "Date")
    assert date.features == {"day": "4", "month": "November", "year": "1854"}


def test_example_zipped_with_its_folder_loads_like_the_directory() -> None:
    files = {str(p.relative_to(EXAMPLE)): p.read_bytes() for p in EXAMPLE.rglob("*")
             if p.is_file()}
    zipped = Pipeline.from_zip(zip_app(dict(files), folder="application/"))
    direct = Pipeline.from_directory(EXAMPLE)
    text = "Brunel built the Clifton Suspension Bridge in Bristol in 1831."
    assert zipped.annotate("d", text) == direct.annotate("d", text)
    assert spans(zipped.annotate("d", text).annotations, text) == [
        ("Person", "Brunel"), ("Location", "Clifton Suspension Bridge"),
        ("Location", "Bristol"), ("Year", "1831")]


def test_offsets_slice_the_entries_and_ids_follow_document_order() -> None:
    pipeline = gazetteer_app("Ada\nLondon\nNew York\n")
    text = "Ada went from New York to London. Then Ada rested."
    document = pipeline.annotate("d", text)
    assert spans(document.annotations, text) == [
        ("Thing", "Ada"), ("Thing", "New York"), ("Thing", "London"), ("Thing", "Ada")]
    assert [a.id for a in document.annotations] == [0, 1, 2, 3]
    assert document.annotations[1].start == text.index("New York")


def test_longest_entry_wins_and_whitespace_in_entries_matches_any_run() -> None:
    pipeline = gazetteer_app("New York\nNew York City\nYork\n")
    text = "From New York City,\nthrough New\n  York, to York."
    assert spans(pipeline.annotate("d", text).annotations, text) == [
        ("Thing", "New York City"), ("Thing", "New\n  York"), ("Thing", "York")]


def test_whole_words_only() -> None:
    pipeline = gazetteer_app("Ada\nC++\n")
    text = "Adam, Ada_x, Canada and 2Ada miss; (Ada) and C++ match."
    assert spans(pipeline.annotate("d", text).annotations, text) == [
        ("Thing", "Ada"), ("Thing", "C++")]


def test_case_insensitive_by_default_and_sensitive_on_request() -> None:
    text = "PARIS, paris and Paris."
    loose = gazetteer_app("Paris\tcountry=FR\n")
    strict = gazetteer_app("Paris\n", caseSensitive=True)
    assert [text[a.start:a.end] for a in loose.annotate("d", text).annotations] == [
        "PARIS", "paris", "Paris"]
    assert all(a.features == {"country": "FR"} for a in loose.annotate("d", text).annotations)
    assert [text[a.start:a.end] for a in strict.annotate("d", text).annotations] == ["Paris"]


def test_list_and_entry_features_merge_and_comments_are_skipped() -> None:
    entries = "# a comment\n\nAda Lovelace\tgender=female\tkind=mathematician\nBabbage\n"
    pipeline = gazetteer_app(entries, set="People", features={"kind": "person", "src": "g"})
    text = "Babbage and Ada Lovelace. # a comment"
    ada, babbage = sorted(pipeline.annotate("d", text).annotations, key=lambda a: a.start)[::-1]
    assert ada.features == {"kind": "mathematician", "src": "g", "gender": "female"}
    assert babbage.features == {"kind": "person", "src": "g"}
    assert (ada.set, babbage.set) == ("People", "People")
    assert len(pipeline.annotate("d", text).annotations) == 2


def test_non_ascii_entries_and_text() -> None:
    pipeline = gazetteer_app("Zürich\nŁódź\nSão Paulo\n")
    text = "𝔸 From zürich to ŁÓDŹ and São Paulo."
    assert spans(pipeline.annotate("d", text).annotations, text) == [
        ("Thing", "zürich"), ("Thing", "ŁÓDŹ"), ("Thing", "São Paulo")]


def reference_matches(entries: list[str], text: str) -> list[tuple[int, int]]:
    """Longest whole-word, case-insensitive matches, left to right, found the slow way."""
    found, position, lower = [], 0, text.lower()
    while position < len(text):
        if position and (text[position - 1].isalnum() or text[position - 1] == "_"):
            position += 1
            continue
        ends = [position + len(e) for e in entries if lower.startswith(e.lower(), position)
                and (position + len(e) == len(text) or not text[position + len(e)].isalnum())]
        if ends:
            found.append((position, max(ends)))
            position = max(ends)
        else:
            position += 1
    return found


WORDS = st.sampled_from(["a", "ab", "b", "ba", "A", "aB", "x"])


@settings(max_examples=200, deadline=None)
@given(st.lists(st.lists(WORDS, min_size=1, max_size=3).map(" ".join), min_size=1,
                max_size=8),
       st.lists(st.tuples(WORDS, st.sampled_from([" ", "-", ", ", ""])), max_size=25))
def test_gazetteer_matches_equal_a_brute_force_reference(
        entries: list[str], tokens: list[tuple[str, str]]) -> None:
    text = "".join(word + separator for word, separator in tokens)
    gazetteer = Gazetteer("Thing", "", False, {}, parse_list("\n".join(entries)))
    found = [(start, end) for start, end, _ in gazetteer.find(text)]
    assert found == reference_matches(entries, text)


def test_rules_fill_features_from_groups() -> None:
    spec = {"name": "r", "rules": [
        {"pattern": r"(?P<user>\w+)@(\w+)\.org", "type": "Email", "set": "Web",
         "features": {"user": "$user", "domain": "$2", "all": "<$0>", "cost": "$$5"}},
        {"pattern": r"\bv(\d+)(?:\.(\d+))?", "type": "Version", "group": 1,
         "features": {"major": "$1", "minor": "$2"}},
    ]}
    pipeline = Pipeline.from_zip(app(spec))
    text = "Mail ada@analytical.org about v2 and v3.1 today."
    email, major2, major3 = pipeline.annotate("d", text).annotations
    assert (email.set, text[email.start:email.end]) == ("Web", "ada@analytical.org")
    assert email.features == {"user": "ada", "domain": "analytical",
                              "all": "<ada@analytical.org>", "cost": "$5"}
    assert text[major2.start:major2.end] == "2"
    assert major2.features == {"major": "2", "minor": ""}
    assert major3.features == {"major": "3", "minor": "1"}


def test_rule_flags_and_empty_matches() -> None:
    spec = {"name": "r", "rules": [
        {"pattern": "ada", "type": "Name", "flags": ["IGNORECASE"]},
        {"pattern": "x*", "type": "Nothing"},
    ]}
    text = "ADA and Ada"
    assert spans(Pipeline.from_zip(app(spec)).annotate("d", text).annotations, text) == [
        ("Name", "ADA"), ("Name", "Ada")]


def test_default_selectors_default_to_what_the_pipeline_makes() -> None:
    spec = {"name": "p", "gazetteers": [{"list": "lists/a.lst", "type": "Person"}],
            "rules": [{"pattern": "x", "type": "X", "set": "S"},
                      {"pattern": "y", "type": "X", "set": "S"}]}
    assert Pipeline.from_zip(app(spec, a="Ada\n")).default_selectors == (":Person", "S:X")
    spec["defaultSelectors"] = " :Person ,S: "
    assert Pipeline.from_zip(app(spec, a="Ada\n")).default_selectors == (":Person", "S:")


def test_thousands_of_entries_match_fast() -> None:
    names = [f"Name{i:05d} Surname{i % 97}" for i in range(5_000)]
    pipeline = gazetteer_app("\n".join(names))
    text = "".join(name + ", filler words here. " for name in names[::100]) * 20
    started = time.perf_counter()
    document = pipeline.annotate("d", text)
    assert time.perf_counter() - started < 1.0
    assert len(document.annotations) == 50 * 20
    assert all(text[a.start:a.end] in names for a in document.annotations)


@pytest.mark.parametrize(
    ("files", "message"),
    [
        ({"readme.txt": "x"}, "no pipeline.json"),
        ({"pipeline.json": "{not json"}, "pipeline.json: not valid UTF-8 JSON"),
        ({"pipeline.json": b"\xff\xfe"}, "pipeline.json: not valid UTF-8 JSON"),
        ({"pipeline.json": "[]"}, "must hold a JSON object"),
        ({"pipeline.json": "[" * 100_000}, "pipeline.json: JSON nested too deeply"),
        ({"pipeline.json": "{}"}, "'name' is missing"),
        ({"pipeline.json": '{"name": "x", "rulez": []}'}, "unknown keys ['rulez']"),
        ({"pipeline.json": '{"name": "x", "gazetteers": [{"list": "a.lst", "type": "T", '
                           '"cases": true}]}'}, "gazetteers[0]: unknown keys ['cases']"),
        ({"pipeline.json": '{"name": "x", "gazetteers": [{"list": "missing.lst", '
                           '"type": "T"}]}'}, "missing.lst: no such file"),
        ({"pipeline.json": '{"name": "x", "gazetteers": [{"list": "../etc/passwd", '
                           '"type": "T"}]}'}, "leaves the application folder"),
        ({"pipeline.json": '{"name": "x", "gazetteers": [{"list": "/etc/passwd", '
                           '"type": "T"}]}'}, "bad path '/etc/passwd'"),
        ({"pipeline.json": '{"name": "x", "gazetteers": [{"list": "a.lst", "type": "T"}]}',
          "a.lst": "ok\nbad\tnofeature\n"}, "a.lst: line 2: feature 'nofeature' is not"),
        ({"pipeline.json": '{"name": "x", "gazetteers": [{"list": "a.lst", "type": "T"}]}',
          "a.lst": b"caf\xe9\n"}, "a.lst: not UTF-8"),
        ({"pipeline.json": '{"name": "x", "rules": [{"pattern": "x", "type": "Two words"}]}'},
         "rules[0]: 'type' 'Two words' must be"),
        ({"pipeline.json": '{"name": "x", "rules": [{"pattern": "x", "type": "T", '
                           '"features": {"n": 3}}]}'}, "'features' must be an object"),
        ({"pipeline.json": '{"name": "x", "rules": [{"pattern": "x", "type": "T", '
                           '"set": "a:b"}]}'}, "rules[0]: 'set' 'a:b' must not hold"),
        ({"pipeline.json": '{"name": "x", "defaultSelectors": ["Person"]}'},
         "defaultSelectors: annotation selector 'Person' has no ':'"),
        ({"a/pipeline.json": "{}", "b/pipeline.json": "{}"}, "several pipeline.json"),
    ],
)
def test_bad_applications_name_the_file_and_why(files: dict[str, str | bytes],
                                                message: str) -> None:
    with pytest.raises(PipelineError) as caught:
        Pipeline.from_zip(zip_app(files))
    assert message in str(caught.value)


@pytest.mark.parametrize(
    ("rule", "message"),
    [
        ({"pattern": "(unclosed", "type": "T"}, "rules[1]: bad pattern '(unclosed': missing )"),
        ({"pattern": "a", "type": "T", "flags": ["LOUD"]}, "rules[1]: unknown flag 'LOUD'"),
        ({"pattern": "(a)", "type": "T", "features": {"f": "$2"}}, "rules[1]: $2 refers"),
        ({"pattern": "(a)", "type": "T", "features": {"f": "$who"}}, "rules[1]: $who refers"),
        ({"pattern": "(a)", "type": "T", "group": 3}, "rules[1]: $3 refers"),
        # `str.isdigit` is true of a superscript two, which `int` refuses.
        ({"pattern": "(a)", "type": "T", "features": {"f": "${²}"}}, "rules[1]: $² refers"),
        ({"type": "T"}, "rules[1]: 'pattern' is missing"),
    ],
)
def test_bad_rules_name_the_rule_and_the_error(rule: dict[str, Any], message: str) -> None:
    spec = {"name": "x", "rules": [{"pattern": "ok", "type": "Ok"}, rule]}
    with pytest.raises(PipelineError) as caught:
        Pipeline.from_zip(app(spec))
    assert message in str(caught.value)
    assert str(caught.value).startswith("pipeline.json: ")


def test_not_a_zip() -> None:
    with pytest.raises(PipelineError, match="not a readable ZIP"):
        Pipeline.from_zip(b"PK\x03\x04 truncated")


def test_a_list_over_the_size_limit_is_refused() -> None:
    spec = {"name": "x", "gazetteers": [{"list": "big.lst", "type": "T"}]}
    big = b"a\n" * (MAX_MEMBER_BYTES // 2 + 1)
    data = zip_app({"pipeline.json": json.dumps(spec), "big.lst": big})
    with pytest.raises(PipelineError, match="big.lst: larger than the limit"):
        Pipeline.from_zip(data)


def test_too_many_files_or_too_many_bytes_in_all(monkeypatch: pytest.MonkeyPatch) -> None:
    spec = {"name": "x", "gazetteers": [{"list": f"{n}.lst", "type": "T"} for n in "abc"]}
    files: dict[str, str | bytes] = {"pipeline.json": json.dumps(spec),
                                     **{f"{n}.lst": "entry\n" * 100 for n in "abc"}}
    assert len(Pipeline.from_zip(zip_app(files)).matchers) == 3
    monkeypatch.setattr(pipeline_module, "MAX_TOTAL_BYTES", 1500)
    with pytest.raises(PipelineError, match="c.lst: larger than the limit of"):
        Pipeline.from_zip(zip_app(files))
    monkeypatch.setattr(pipeline_module, "MAX_MEMBERS", 3)
    with pytest.raises(PipelineError, match="application: more than 3 files"):
        Pipeline.from_zip(zip_app(files))


def test_from_directory_refuses_paths_out_of_the_folder(tmp_path: Path) -> None:
    (tmp_path / "secret.lst").write_text("Ada\n")
    root = tmp_path / "app"
    root.mkdir()
    (root / "pipeline.json").write_text(json.dumps(
        {"name": "x", "gazetteers": [{"list": "lists/../../secret.lst", "type": "T"}]}))
    with pytest.raises(PipelineError, match="leaves the application folder"):
        Pipeline.from_directory(root)


def test_a_rule_that_runs_too_long_fails_with_rule_timeout(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """User patterns get a time limit per document (here a tiny one, to keep the test fast);
    the error names the rule's type."""
    from services.worker.annotation import rules

    rule = rules.Rule.build("Slow", "", r"(\w+\s?)+\d", [], 0, {})
    assert list(rule.find("short text 1"))  # within the limit, it matches
    monkeypatch.setattr(rules, "RULE_SECONDS", 0.001)
    with pytest.raises(rules.RuleTimeout, match="rule for Slow ran longer than"):
        list(rule.find("word " * 200_000))
