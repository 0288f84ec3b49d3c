"""Output formats of GATE Cloud annotation jobs (seed §7): each document, with the selected
annotations, as bytes for one output file.

- GATE_XML: GATE's standoff XML: `<GateDocument version="3">` with the document features
  (`docName`, and `MimeType` text/plain since the text is plain), the text in
  `<TextWithNodes>` with a `<Node id="offset"/>` at every annotation boundary, then one
  `<AnnotationSet>` per set: the default set first (unnamed, always present), then the named
  sets by name (`Name="..."`), each annotation as `<Annotation Id Type StartNode EndNode>`
  with `<Feature><Name className="java.lang.String">..</Name><Value ...>..</Value></Feature>`.
- INLINE_XML: the text with each annotation as an element around its span, features as
  attributes, inside one root element `<document>`. Annotations are taken in document order
  (by start, longest first, then id); one that would cross the boundary of an annotation
  already written (start inside it, end outside) is left out, so the output nests. In
  element and attribute names, characters other than ASCII letters, digits, `_`, `.` and
  `-` become `_` (see `xml_name`).
- XCES: xcesAna standoff, `<cesAna xmlns="http://www.xces.org/schema/2003" version="1.0">`
  holding `<struct type=".." from=".." to="..">` with `<feat name=".." value=".."/>`, every
  selected annotation in document order, sets merged.
- JSON: exactly §7: `{"text": ..., "entities": {Type: [{"indices": [start, end], feature:
  value, ...}]}}`, types in order of first appearance, annotations of every set grouped by
  type (a feature called `indices` is left out).

Offsets count code points of the text. All XML is UTF-8. Characters XML 1.0 cannot hold
(most C0 controls, lone surrogates, U+FFFE, U+FFFF) are written as U+FFFD, one for one, so
offsets stay true; carriage returns are written as `&#13;` so that parsers keep them. The
same input always gives the same bytes."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Sequence
from itertools import groupby

from services.worker.annotation.model import DEFAULT_SET, AnnotatedDocument, Annotation
from shared.gate import FORMATS

XCES_NAMESPACE = "http://www.xces.org/schema/2003"
INLINE_ROOT = "document"
_XML_DECLARATION = '<?xml version="1.0" encoding="UTF-8"?>\n'
_INVALID = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")
_TEXT_ESCAPES = {"&": "&amp;", "<": "&lt;", ">": "&gt;", "\r": "&#13;"}
_ATTR_ESCAPES = {**_TEXT_ESCAPES, '"': "&quot;", "\t": "&#9;", "\n": "&#10;"}
_TEXT_SPECIAL = re.compile("[&<>\r]")
_ATTR_SPECIAL = re.compile('[&<>\r"\t\n]')
_NAME_START = re.compile(r"[A-Za-z_]")
_NAME_BAD = re.compile(r"[^A-Za-z0-9_.\-]")


def _clean(text: str) -> str:
    return _INVALID.sub("\ufffd", text)


def escape_text(text: str) -> str:
    return _TEXT_SPECIAL.sub(lambda m: _TEXT_ESCAPES[m.group()], _clean(text))


def escape_attr(text: str) -> str:
    return _ATTR_SPECIAL.sub(lambda m: _ATTR_ESCAPES[m.group()], _clean(text))


def xml_name(name: str) -> str:
    """`name` made into an XML name: anything but ASCII letters, digits, `_`, `.` and `-`
    becomes `_` (parsers such as expat accept few other letters), and a name that starts
    with a digit, `.`, `-` or "xml" gets a leading `_`."""
    name = _NAME_BAD.sub("_", name)
    if not name or not _NAME_START.match(name) or name.lower().startswith("xml"):
        name = "_" + name
    return name


def _ordered(annotations: Sequence[Annotation]) -> list[Annotation]:
    return sorted(annotations, key=lambda a: (a.start, -a.end, a.id))


def _gate_features(features: dict[str, str], indent: str = "") -> list[str]:
    return [
        f'{indent}<Feature>\n{indent}  <Name className="java.lang.String">{escape_text(k)}'
        f'</Name>\n{indent}  <Value className="java.lang.String">{escape_text(v)}</Value>\n'
        f"{indent}</Feature>\n"
        for k, v in features.items()
    ]


def render_gate_xml(document: AnnotatedDocument, annotations: Sequence[Annotation]) -> str:
    text = document.text
    nodes = sorted({0, len(text)} | {a.start for a in annotations} | {a.end for a in annotations})
    out = [_XML_DECLARATION, '<GateDocument version="3">\n',
           "<!-- The document's features-->\n\n<GateDocumentFeatures>\n",
           *_gate_features({"docName": document.name, "MimeType": "text/plain"}),
           "</GateDocumentFeatures>\n",
           "<!-- The document content area with serialized nodes -->\n\n<TextWithNodes>"]
    previous = 0
    for node in nodes:
        out.append(escape_text(text[previous:node]) + f'<Node id="{node}"/>')
        previous = node
    out.append("</TextWithNodes>\n")
    by_set: dict[str, list[Annotation]] = {DEFAULT_SET: []}
    for annotation in _ordered(annotations):
        by_set.setdefault(annotation.set, []).append(annotation)
    for set_name in sorted(by_set):
        name = f' Name="{escape_attr(set_name)}"' if set_name else ""
        label = "The default annotation set" if not set_name else "Named annotation set"
        out.append(f"<!-- {label} -->\n\n<AnnotationSet{name}>\n")
        for a in by_set[set_name]:
            out.append(f'<Annotation Id="{a.id}" Type="{escape_attr(a.type)}" '
                       f'StartNode="{a.start}" EndNode="{a.end}">\n')
            out.extend(_gate_features(a.features))
            out.append("</Annotation>\n")
        out.append("</AnnotationSet>\n\n")
    out.append("</GateDocument>\n")
    return "".join(out)


def nesting(annotations: Sequence[Annotation]) -> list[Annotation]:
    """The annotations INLINE_XML writes: in document order, leaving out any that cross."""
    kept: list[Annotation] = []
    open_: list[Annotation] = []
    for a in _ordered(annotations):
        while open_ and open_[-1].end <= a.start:
            open_.pop()
        if open_ and a.end > open_[-1].end:
            continue
        kept.append(a)
        if a.end > a.start:
            open_.append(a)
    return kept


def _start_tag(a: Annotation) -> str:
    names = {xml_name(k): v for k, v in a.features.items()}
    attrs = "".join(f' {k}="{escape_attr(v)}"' for k, v in names.items())
    return f"<{xml_name(a.type)}{attrs}"


def render_inline_xml(document: AnnotatedDocument, annotations: Sequence[Annotation]) -> str:
    text = document.text
    out = [_XML_DECLARATION, f"<{INLINE_ROOT}>"]
    position = 0
    open_: list[Annotation] = []

    def close_to(limit: int) -> None:
        nonlocal position
        while open_ and open_[-1].end <= limit:
            top = open_.pop()
            out.append(escape_text(text[position:top.end]) + f"</{xml_name(top.type)}>")
            position = top.end

    for a in nesting(annotations):
        close_to(a.start)
        out.append(escape_text(text[position:a.start]) + _start_tag(a))
        position = a.start
        if a.end > a.start:
            out.append(">")
            open_.append(a)
        else:
            out.append("/>")
    close_to(len(text))
    out.append(escape_text(text[position:]) + f"</{INLINE_ROOT}>\n")
    return "".join(out)


def render_xces(document: AnnotatedDocument, annotations: Sequence[Annotation]) -> str:
    out = [_XML_DECLARATION, f'<cesAna xmlns="{XCES_NAMESPACE}" version="1.0">\n']
    for a in _ordered(annotations):
        out.append(f'<struct type="{escape_attr(a.type)}" from="{a.start}" to="{a.end}">\n')
        out.extend(f'<feat name="{escape_attr(k)}" value="{escape_attr(v)}"/>\n'
                   for k, v in a.features.items())
        out.append("</struct>\n")
    out.append("</cesAna>\n")
    return "".join(out)


def render_json(document: AnnotatedDocument, annotations: Sequence[Annotation]) -> str:
    ordered = _ordered(annotations)
    first_seen = {a.type: index for index, a in reversed(list(enumerate(ordered)))}
    entities = {
        type_: [{"indices": [a.start, a.end],
                 **{k: v for k, v in a.features.items() if k != "indices"}} for a in group]
        for type_, group in groupby(
            sorted(ordered, key=lambda a: first_seen[a.type]), key=lambda a: a.type)
    }
    return json.dumps({"text": document.text, "entities": entities}, ensure_ascii=False)


_RENDERERS: dict[str, Callable[[AnnotatedDocument, Sequence[Annotation]], str]] = {
    "GATE_XML": render_gate_xml, "INLINE_XML": render_inline_xml, "XCES": render_xces,
    "JSON": render_json,
}


def render(document: AnnotatedDocument, fmt: str, annotations: Sequence[Annotation]) -> bytes:
    """The output file for `document` in format `fmt` (one of FORMATS), with `annotations`."""
    if fmt not in _RENDERERS:
        raise ValueError(f"output format {fmt!r} is not one of {', '.join(FORMATS)}")
    # backslashreplace writes a lone surrogate (only possible inside a JSON string) as a
    # \\udxxx escape, which JSON reads back; the XML renderers have none left to encode.
    return _RENDERERS[fmt](document, annotations).encode("utf-8", "backslashreplace")
