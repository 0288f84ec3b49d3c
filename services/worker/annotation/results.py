"""Documents read back out of another run's output files: an input of type RESULTS (seed
§6: a job's input may be "created automatically as the result of another annotation job").

Each file gives back the document it was written from: the `text` of a JSON output, the
text of a GATE XML output's `TextWithNodes` (named by its `docName` feature), the text of an
inline XML output. XCES files hold no text and are passed over. A run usually wrote several
files per document (one per output spec), so each document is read once: by its name (the
file's name without the output's ending) or, when a custom ending hides it, by its text."""

from __future__ import annotations

import hashlib
import json
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Iterator

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import fromstring

from services.worker.annotation.documents import SourceDocument
from services.worker.annotation.formats import INLINE_ROOT
from shared.gate import DEFAULT_EXTENSIONS

# Longest first, so `.GATE.xml` is taken off whole rather than as `.xml`.
ENDINGS = sorted(DEFAULT_EXTENSIONS.values(), key=len, reverse=True)


def document_name(file_name: str) -> str:
    """`paris.txt.GATE.xml` -> `paris.txt`; a custom ending loses its last suffix."""
    for ending in ENDINGS:
        if file_name.endswith(ending) and len(file_name) > len(ending):
            return file_name[:-len(ending)]
    stem, dot, _ = file_name.rpartition(".")
    return stem if dot and stem else file_name


def read_back(file_name: str, data: bytes) -> tuple[str, str] | None:
    """(document name, text) written into an output file; None for a file with no text."""
    head = data.lstrip()[:1]
    if head == b"{":
        try:
            found = json.loads(data)
        except (json.JSONDecodeError, UnicodeDecodeError):
            return None
        text = found.get("text") if isinstance(found, dict) else None
        return (document_name(file_name), text) if isinstance(text, str) else None
    if head != b"<":
        return None
    try:
        root = fromstring(data, forbid_dtd=True)
    except (ET.ParseError, DefusedXmlException):
        return None
    if root.tag == "GateDocument":
        content = root.find("TextWithNodes")
        if content is None:
            return None
        name = document_name(file_name)
        for feature in root.iterfind("GateDocumentFeatures/Feature"):
            if feature.findtext("Name") == "docName" and feature.findtext("Value"):
                name = feature.findtext("Value") or name
        return name, "".join(content.itertext())
    if root.tag == INLINE_ROOT:
        return document_name(file_name), "".join(root.itertext())
    return None


def read_results(files: Iterable[tuple[str, bytes]]) -> Iterator[SourceDocument]:
    """Each document of a run's output files once, in the order of its first file."""
    names: set[str] = set()
    texts: set[bytes] = set()
    for file_name, data in files:
        found = read_back(file_name, data)
        if found is None:
            continue
        name, text = found
        digest = hashlib.sha256(text.encode()).digest()
        if name in names or digest in texts:
            continue
        names.add(name)
        texts.add(digest)
        yield SourceDocument(name=name, mime_type="text/plain", size=len(text.encode()),
                             text=text, error=None)
