"""The XML forms of the GATE Cloud-style API: answers in the seed's shapes, bodies parsed
safely, and content negotiation by `Accept`."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

import pytest
from aiohttp.test_utils import make_mocked_request
from hypothesis import given
from hypothesis import strategies as st

from shared.xmlforms import XmlBodyError, from_xml, to_xml, wants_xml


def test_lists_repeat_their_item_element_and_at_keys_are_attributes() -> None:
    jobs = ET.fromstring(to_xml("jobs", [{"url": "u1", "state": "ACTIVE"},
                                         {"url": "u2", "state": "READY"}]))
    assert [(j.findtext("url"), j.findtext("state")) for j in jobs.iter("job")] == [
        ("u1", "ACTIVE"), ("u2", "READY")]
    job = ET.fromstring(to_xml("job", {"name": "n", "fixed": True, "gone": None,
                                       "price": {"@setup": 0, "@hour": 0.8}}))
    assert job.find("price").attrib == {"setup": "0", "hour": "0.8"}  # type: ignore[union-attr]
    assert job.findtext("fixed") == "true"
    assert job.find("gone") is None
    log = ET.fromstring(to_xml("log", [{"@date": "2026-01-01T00:00:00Z", "#text": "hi"}]))
    entry = log.find("entry")
    assert entry is not None
    assert (entry.get("date"), entry.text) == ("2026-01-01T00:00:00Z", "hi")


@given(st.text())
def test_any_text_survives_the_round_trip_as_well_formed_xml(text: str) -> None:
    parsed = ET.fromstring(to_xml("report", {"message": text}))
    shown = parsed.findtext("message") or ""
    # Characters XML cannot carry become U+FFFD, and XML reads line ends as \n; everything
    # else comes back as it was.
    carried = re.sub("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]", "\ufffd", text)
    assert shown == carried.replace("\r\n", "\n").replace("\r", "\n")


def test_bodies_parse_to_fields_with_nil_as_none() -> None:
    raw = (b'<output xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">'
           b'<type> JSON </type><username xsi:nil="true"/><fileExtension></fileExtension>'
           b"</output>")
    assert from_xml(raw, "output") == {"type": "JSON", "username": None, "fileExtension": ""}


@pytest.mark.parametrize(("raw", "words"), [
    (b"<job><name>x</job>", "not well-formed"),
    (b"<control><action>start</action></control>", "must be a <job> element"),
    (b'<!DOCTYPE job [<!ENTITY e "x">]><job><name>&e;</name></job>', "not well-formed"),
    (b'<!DOCTYPE job SYSTEM "http://example.invalid/x.dtd"><job/>', "not well-formed"),
    (b"", "not well-formed"),
])
def test_bad_bodies_are_refused(raw: bytes, words: str) -> None:
    with pytest.raises(XmlBodyError, match=words):
        from_xml(raw, "job")


@pytest.mark.parametrize(("accept", "xml"), [
    ("", False), ("application/json", False), ("application/xml", True), ("text/xml", True),
    ("*/*", False), ("application/xml;q=0.5, application/json", False),
    ("application/json;q=0.5, application/xml", True), ("application/xml, */*;q=0.1", True),
    ("application/xml;q=bogus, application/json;q=0.1", False),
])
def test_accept_chooses_xml_only_when_preferred(accept: str, xml: bool) -> None:
    request = make_mocked_request("GET", "/api/job", headers={"Accept": accept} if accept else {})
    assert wants_xml(request) is xml
