"""Documents read back out of a run's output files (inputs of type RESULTS)."""

from __future__ import annotations

from services.worker.annotation.formats import render
from services.worker.annotation.model import AnnotatedDocument, Annotation
from services.worker.annotation.results import document_name, read_back, read_results

TEXT = "Ada Lovelace met Babbage in London & wrote <notes>.\r\nThe end."
DOCUMENT = AnnotatedDocument("ada.txt", TEXT, (
    Annotation(1, "", "Person", 0, 12, {"kind": "person"}),
    Annotation(2, "", "Location", 28, 34, {}),
))


def test_every_format_with_text_gives_the_document_back() -> None:
    annotations = DOCUMENT.annotations
    for fmt, ending in (("JSON", ".json"), ("GATE_XML", ".GATE.xml"),
                        ("INLINE_XML", ".inline.xml")):
        assert read_back("ada.txt" + ending, render(DOCUMENT, fmt, annotations)) == (
            "ada.txt", TEXT), fmt
    assert read_back("ada.txt.xces.xml", render(DOCUMENT, "XCES", annotations)) is None


def test_each_document_is_read_once_whatever_its_files() -> None:
    files = [("ada.txt" + ending, render(DOCUMENT, fmt, DOCUMENT.annotations))
             for fmt, ending in (("GATE_XML", ".GATE.xml"), ("JSON", ".json"),
                                 ("XCES", ".xces.xml"), ("JSON", ".people.json"))]
    other = AnnotatedDocument("b.txt", "Paris", ())
    files.append(("b.txt.json", render(other, "JSON", ())))
    found = list(read_results(files))
    assert [(d.name, d.text) for d in found] == [("ada.txt", TEXT), ("b.txt", "Paris")]
    assert all(d.error is None and d.mime_type == "text/plain" for d in found)


def test_names_and_files_that_are_not_outputs() -> None:
    assert document_name("a/b.html.GATE.xml") == "a/b.html"
    assert document_name("paris.txt.people.json") == "paris.txt.people"
    assert document_name("paris.txt.people") == "paris.txt"
    assert document_name("noext") == "noext"
    for junk in (b"", b"plain words", b"{not json", b"[1, 2]", b"<other/>", b"<a><b></a>",
                 b'<!DOCTYPE x [<!ENTITY e "x">]><document>&e;</document>',
                 b'{"text": 3}'):
        assert read_back("x.json", junk) is None, junk
