"""Output formats (seed §7), each parsed back and checked for text, offsets and features."""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.worker.annotation.formats import (
    INLINE_ROOT,
    XCES_NAMESPACE,
    nesting,
    render,
    xml_name,
)
from services.worker.annotation.model import AnnotatedDocument, Annotation
from services.worker.annotation.pipeline import Pipeline
from services.worker.annotation.selectors import parse_selectors, select
from shared.gate import DEFAULT_EXTENSIONS, FORMATS

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "gate"
TEXT = "Ada Lovelace met Charles Babbage in London in 1833."
ANNOTATIONS = (
    Annotation(0, "", "Person", 0, 12, {"gender": "female", "note": 'says "hi" & <bye>'}),
    Annotation(1, "", "Person", 17, 32, {"gender": "male"}),
    Annotation(2, "", "Location", 36, 42, {}),
    Annotation(3, "Dates", "Year", 46, 50, {"value": "1833", "tab": "a\tb\nc"}),
)
DOCUMENT = AnnotatedDocument("doc.txt", TEXT, ANNOTATIONS)
_INVALID = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def xml_safe(text: str) -> str:
    return _INVALID.sub("\ufffd", text)


def gate_text_and_nodes(root: ET.Element) -> tuple[str, dict[str, int]]:
    """The text of <TextWithNodes> and the offset of each node id, counted while reading."""
    text_with_nodes = root.find("TextWithNodes")
    assert text_with_nodes is not None
    text, nodes = text_with_nodes.text or "", {}
    for node in text_with_nodes:
        nodes[node.attrib["id"]] = len(text)
        text += node.tail or ""
    return text, nodes


def gate_features(element: ET.Element) -> dict[str, str]:
    return {f.findtext("Name") or "": f.findtext("Value") or "" for f in element.findall("Feature")}


def inline_spans(root: ET.Element) -> tuple[str, list[tuple[str, int, int, dict[str, str]]]]:
    """The text of an inline XML document and (tag, start, end, attributes) of each element."""
    spans: list[tuple[str, int, int, dict[str, str]]] = []

    def walk(element: ET.Element, offset: int) -> str:
        text = element.text or ""
        for child in element:
            start, index = offset + len(text), len(spans)
            spans.append((child.tag, start, start, dict(child.attrib)))
            inner = walk(child, start)
            spans[index] = (child.tag, start, start + len(inner), dict(child.attrib))
            text += inner + (child.tail or "")
        return text

    return walk(root, 0), spans  # in document order: outer elements before inner ones


def test_gate_xml_parses_back_to_the_text_offsets_sets_and_features() -> None:
    root = ET.fromstring(render(DOCUMENT, "GATE_XML", ANNOTATIONS))
    assert root.tag == "GateDocument"
    assert root.attrib == {"version": "3"}
    document_features = root.find("GateDocumentFeatures")
    assert document_features is not None
    assert gate_features(document_features)["docName"] == "doc.txt"
    text, nodes = gate_text_and_nodes(root)
    assert text == TEXT
    sets = root.findall("AnnotationSet")
    assert [s.get("Name") for s in sets] == [None, "Dates"]
    read = {}
    for annotation_set in sets:
        for element in annotation_set.findall("Annotation"):
            start = nodes[element.attrib["StartNode"]]
            end = nodes[element.attrib["EndNode"]]
            assert (start, end) == (int(element.attrib["StartNode"]),
                                    int(element.attrib["EndNode"]))
            read[int(element.attrib["Id"])] = (annotation_set.get("Name", ""),
                                               element.attrib["Type"], start, end,
                                               gate_features(element))
    assert read == {a.id: (a.set, a.type, a.start, a.end, a.features) for a in ANNOTATIONS}
    assert read[3][2:4] == (46, 50)
    assert TEXT[46:50] == "1833"


def test_gate_xml_always_has_the_default_set() -> None:
    root = ET.fromstring(render(DOCUMENT, "GATE_XML", []))
    assert [s.attrib for s in root.findall("AnnotationSet")] == [{}]
    assert gate_text_and_nodes(root)[0] == TEXT


def test_inline_xml_wraps_spans_in_elements_with_feature_attributes() -> None:
    output = render(DOCUMENT, "INLINE_XML", ANNOTATIONS)
    root = ET.fromstring(output)
    assert root.tag == INLINE_ROOT
    text, spans = inline_spans(root)
    assert text == TEXT
    assert spans == [(a.type, a.start, a.end, a.features) for a in ANNOTATIONS]
    assert b'<Location>London</Location>' in output


def test_inline_xml_leaves_out_crossing_annotations_and_keeps_nested_ones() -> None:
    text = "New York City Hall"
    annotations = [
        Annotation(0, "", "City", 0, 13, {}),   # New York City
        Annotation(1, "", "Hall", 9, 18, {}),   # City Hall: crosses City, left out
        Annotation(2, "", "State", 0, 8, {}),   # New York: nested in City
        Annotation(3, "", "Word", 4, 8, {}),    # York: nested in State
        Annotation(4, "", "Empty", 13, 13, {}),
        Annotation(5, "", "Again", 0, 13, {}),  # same span as City: nested inside it
    ]
    assert [a.id for a in nesting(annotations)] == [0, 5, 2, 3, 4]
    output = render(AnnotatedDocument("d", text, tuple(annotations)), "INLINE_XML", annotations)
    assert output.decode().splitlines()[1] == (
        "<document><City><Again><State>New <Word>York</Word></State> City</Again></City>"
        "<Empty/> Hall</document>")
    parsed_text, spans = inline_spans(ET.fromstring(output))
    assert parsed_text == text
    assert [(tag, start, end) for tag, start, end, _ in spans] == [
        ("City", 0, 13), ("Again", 0, 13), ("State", 0, 8), ("Word", 4, 8), ("Empty", 13, 13)]


def test_inline_xml_makes_feature_names_into_xml_names() -> None:
    annotation = Annotation(0, "", "Person", 0, 3, {"first name": "Ada", "xmlns": "x",
                                                    "1st": "y", "a:b": "z", "größe": "1"})
    output = render(AnnotatedDocument("d", "Ada", (annotation,)), "INLINE_XML", [annotation])
    person = ET.fromstring(output)[0]
    assert person.attrib == {"first_name": "Ada", "_xmlns": "x", "_1st": "y", "a_b": "z",
                             "gr__e": "1"}


def test_xces_structs_and_feats() -> None:
    root = ET.fromstring(render(DOCUMENT, "XCES", ANNOTATIONS))
    assert root.tag == f"{{{XCES_NAMESPACE}}}cesAna"
    assert root.attrib == {"version": "1.0"}
    structs = root.findall(f"{{{XCES_NAMESPACE}}}struct")
    assert [(s.attrib["type"], int(s.attrib["from"]), int(s.attrib["to"]),
             {f.attrib["name"]: f.attrib["value"] for f in s})
            for s in structs] == [(a.type, a.start, a.end, a.features) for a in ANNOTATIONS]


def test_json_is_the_seed_format_grouped_by_type_across_sets() -> None:
    also = Annotation(4, "Other", "Person", 36, 42, {"indices": "clash"})
    output = json.loads(render(DOCUMENT, "JSON", [*ANNOTATIONS, also]))
    assert output == {
        "text": TEXT,
        "entities": {
            "Person": [
                {"indices": [0, 12], "gender": "female", "note": 'says "hi" & <bye>'},
                {"indices": [17, 32], "gender": "male"},
                {"indices": [36, 42]},
            ],
            "Location": [{"indices": [36, 42]}],
            "Year": [{"indices": [46, 50], "value": "1833", "tab": "a\tb\nc"}],
        },
    }


def test_example_application_end_to_end_in_every_format() -> None:
    pipeline = Pipeline.from_directory(EXAMPLE / "application")
    text = (EXAMPLE / "documents" / "radium.txt").read_text(encoding="utf-8")
    document = pipeline.annotate("radium.txt", text)
    chosen = select(document.annotations, parse_selectors(pipeline.default_selectors))
    entities = json.loads(render(document, "JSON", chosen))["entities"]
    assert [text[s:e] for s, e in (x["indices"] for x in entities["Location"])] == [
        "Warsaw", "Paris", "New York"]
    assert entities["Person"] == [{"indices": [0, 11], "kind": "person", "gender": "female",
                                   "born": "1867"}]
    assert [x["value"] for x in entities["Year"]] == ["1867", "1903", "1911", "1921"]
    inline_text, spans = inline_spans(ET.fromstring(render(document, "INLINE_XML", chosen)))
    assert inline_text == text
    assert ("Person", 0, 11, {"kind": "person", "gender": "female", "born": "1867"}) in spans
    assert gate_text_and_nodes(ET.fromstring(render(document, "GATE_XML", chosen)))[0] == text


def test_control_characters_and_carriage_returns_survive() -> None:
    text = "Ada\r\nBob\x01\x0b\ufffe end"
    annotation = Annotation(0, "", "Name", 5, 9, {"raw": "x\x02y\r"})
    document = AnnotatedDocument("d", text, (annotation,))
    for fmt in ("GATE_XML", "INLINE_XML", "XCES"):
        ET.fromstring(render(document, fmt, [annotation]))
    gate_text, nodes = gate_text_and_nodes(ET.fromstring(render(document, "GATE_XML",
                                                                [annotation])))
    assert gate_text == "Ada\r\nBob\ufffd\ufffd\ufffd end"
    assert nodes["9"] == 9
    inline = ET.fromstring(render(document, "INLINE_XML", [annotation]))
    assert inline[0].text == "Bob\ufffd"
    assert inline[0].attrib == {"raw": "x\ufffdy\r"}
    assert json.loads(render(document, "JSON", [annotation]))["text"] == text


def test_formats_extensions_and_unknown_format() -> None:
    assert set(DEFAULT_EXTENSIONS) == set(FORMATS) == {"GATE_XML", "INLINE_XML", "XCES", "JSON"}
    assert DEFAULT_EXTENSIONS["GATE_XML"] == ".GATE.xml"
    with pytest.raises(ValueError, match="'MIMIR' is not one of"):
        render(DOCUMENT, "MIMIR", ANNOTATIONS)


@st.composite
def documents(draw: st.DrawFn) -> AnnotatedDocument:
    text = draw(st.text(max_size=60))
    count = draw(st.integers(0, 8))
    annotations = []
    for index in range(count):
        start = draw(st.integers(0, len(text)))
        end = draw(st.integers(start, len(text)))
        features = draw(st.dictionaries(st.text(min_size=1, max_size=5), st.text(max_size=8),
                                        max_size=3))
        type_ = draw(st.sampled_from(["Person", "Location", "Year", "Two words", "xml"]))
        set_ = draw(st.sampled_from(["", "Results", "a&b"]))
        annotations.append(Annotation(index, set_, type_, start, end, features))
    return AnnotatedDocument("doc", text, tuple(annotations))


@settings(max_examples=150, deadline=None)
@given(documents())
def test_every_format_parses_and_keeps_offsets(document: AnnotatedDocument) -> None:
    chosen = document.annotations
    entities = json.loads(render(document, "JSON", chosen))["entities"]
    found = sorted((type_, *item["indices"]) for type_, items in entities.items()
                   for item in items)
    assert found == sorted((a.type, a.start, a.end) for a in chosen)

    gate_text, nodes = gate_text_and_nodes(ET.fromstring(render(document, "GATE_XML", chosen)))
    assert gate_text == xml_safe(document.text)
    assert all(nodes[str(a.start)] == a.start and nodes[str(a.end)] == a.end for a in chosen)

    inline_text, spans = inline_spans(ET.fromstring(render(document, "INLINE_XML", chosen)))
    assert inline_text == xml_safe(document.text)
    assert [(tag, start, end) for tag, start, end, _ in spans] == [
        (xml_name(a.type), a.start, a.end) for a in nesting(chosen)]

    structs = ET.fromstring(render(document, "XCES", chosen))
    assert len(structs) == len(chosen)
    assert render(document, "XCES", chosen) == render(document, "XCES", chosen)
