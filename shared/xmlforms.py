"""XML forms of JSON-shaped data, for the APIs that answer either (GATE Cloud's job API).

The mapping is the one the seed's examples follow: an object is an element with one child per
key; a list repeats an item element (`<jobs><job>…</job></jobs>`); a key starting with `@`
becomes an attribute (`<price setup="0" hour="0.8"/>`) and `#text` the element's text;
`None` is left out. Parsing goes the other way for request bodies, without entity expansion
or DTDs, and turns `xsi:nil="true"` into `None` (the seed's way to unset a value)."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Mapping
from typing import Any

from aiohttp import web
from defusedxml import DefusedXmlException
from defusedxml.ElementTree import fromstring

from shared.nesting import MAX_BODY_DEPTH, too_deep_message, tree_depth

XML_TYPE = "application/xml"
XML_TYPES = frozenset({"application/xml", "text/xml"})
XSI_NIL = "{http://www.w3.org/2001/XMLSchema-instance}nil"
# The element each list's items get, by the list's own element name; others use `item`.
ITEM_NAMES: Mapping[str, str] = {
    "jobs": "job", "inputs": "input", "outputs": "output", "reports": "report",
    "log": "entry", "files": "file", "bundles": "bundle", "errors": "error",
    "validStates": "state", "missing": "part", "failures": "failure",
}
# Characters XML 1.0 cannot carry at all, not even escaped.
_INVALID_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


class XmlBodyError(ValueError):
    """A request body that is not well-formed XML, or not of the expected form."""


def _scalar(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return _INVALID_XML.sub("\ufffd", str(value))


def _fill(element: ET.Element, value: Any) -> None:
    if isinstance(value, Mapping):
        for key, item in value.items():
            if item is None:
                continue
            if key.startswith("@"):
                element.set(key[1:], _scalar(item))
            elif key == "#text":
                element.text = _scalar(item)
            elif isinstance(item, list):
                holder = ET.SubElement(element, key)
                _fill(holder, item)
            else:
                _fill(ET.SubElement(element, key), item)
    elif isinstance(value, list):
        name = ITEM_NAMES.get(element.tag, "item")
        for item in value:
            _fill(ET.SubElement(element, name), item)
    else:
        element.text = _scalar(value)


def to_xml(root: str, data: Any) -> bytes:
    element = ET.Element(root)
    _fill(element, data)
    return bytes(ET.tostring(element, encoding="utf-8", xml_declaration=True))


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _read(element: ET.Element) -> Any:
    if element.get(XSI_NIL) in {"true", "1"}:
        return None
    children = list(element)
    if not children:
        return (element.text or "").strip()
    fields: dict[str, Any] = {}
    for child in children:
        name, value = _local(child.tag), _read(child)
        if name in fields:
            earlier = fields[name]
            fields[name] = [*earlier, value] if isinstance(earlier, list) else [earlier, value]
        else:
            fields[name] = value
    return fields


def from_xml(raw: bytes, root: str) -> dict[str, Any]:
    """The fields of a `<root>` document: text of leaf elements, `None` for `xsi:nil`."""
    try:
        element = fromstring(raw, forbid_dtd=True)
    except (ET.ParseError, DefusedXmlException) as exc:
        raise XmlBodyError(f"is not well-formed XML: {exc}") from None
    if _local(element.tag) != root:
        raise XmlBodyError(f"must be a <{root}> element, not <{_local(element.tag)}>")
    if tree_depth(element, list) > MAX_BODY_DEPTH:
        raise XmlBodyError(too_deep_message())
    fields = _read(element)
    return fields if isinstance(fields, dict) else {}


def _quality(part: str) -> tuple[str, float]:
    media, *params = (piece.strip() for piece in part.split(";"))
    quality = 1.0
    for param in params:
        name, _, value = param.partition("=")
        if name.strip() == "q":
            try:
                quality = float(value)
            except ValueError:
                quality = 0.0
    return media.lower(), quality


def wants_xml(request: web.BaseRequest) -> bool:
    """Whether the client prefers XML to JSON (`Accept`); JSON when it does not say."""
    xml = json = 0.0
    for part in request.headers.get("Accept", "").split(","):
        if not part.strip():
            continue
        media, quality = _quality(part)
        if media in XML_TYPES:
            xml = max(xml, quality)
        elif media in {"application/json", "application/*", "*/*"}:
            json = max(json, quality)
    return xml > json


def sends_xml(request: web.BaseRequest) -> bool:
    return request.content_type in XML_TYPES


def respond(
    request: web.BaseRequest, data: Any, root: str, *, status: int = 200,
    headers: Mapping[str, str] | None = None, xml: Any = None,
) -> web.Response:
    """`data` as JSON, or as XML under `root` when the client asks for XML (`xml`, when
    given, is the XML's own shape of the same data: attributes where JSON has objects)."""
    if wants_xml(request):
        body = to_xml(root, data if xml is None else xml)
        return web.Response(body=body, status=status, headers=headers,
                            content_type=XML_TYPE, charset="utf-8")
    return web.json_response(data, status=status, headers=headers)
