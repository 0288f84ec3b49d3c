"""Records of Internet Archive ARC files (version 1, also readable: version 2 headers).

An ARC file is a `filedesc://` version block followed by records; each record is a header
line `URL IP-address Archive-date Content-type Archive-length` (version 2 adds fields
before the length, which is always last), then exactly Archive-length bytes, then a newline.
A `.arc.gz` is the same, each record usually its own gzip member; gzip input is recognised
by its magic number, not its name. Records are read one at a time."""

from __future__ import annotations

import gzip
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from email.message import Message
from email.parser import BytesHeaderParser
from pathlib import Path
from typing import Protocol

from shared.numbers import whole_number

MAX_HEADER_LINE = 8192
_CHUNK = 1024 * 1024


class _Stream(Protocol):
    def read(self, size: int = -1, /) -> bytes: ...
    def readline(self, size: int = -1, /) -> bytes: ...


class ArcFormatError(ValueError):
    """The file is not a well-formed ARC file; the message says where."""


@dataclass(frozen=True)
class ArcRecord:
    url: str
    content_type: str  # as in the record header; "" when it gives none
    length: int  # Archive-length: the bytes of the record, HTTP headers included
    http_headers: Message | None  # the HTTP response headers, when the record has them
    content: bytes | None  # the body without HTTP headers; None when over the size limit


def _split_http(block: bytes) -> tuple[Message | None, bytes]:
    """HTTP response headers (when the block starts with a status line) and the body."""
    if not block.startswith(b"HTTP/"):
        return None, block
    ends = [(i, len(sep)) for sep in (b"\r\n\r\n", b"\n\n") if (i := block.find(sep)) >= 0]
    if not ends:
        return BytesHeaderParser().parsebytes(block.partition(b"\n")[2]), b""
    index, size = min(ends)
    head = block[:index].partition(b"\n")[2]
    return BytesHeaderParser().parsebytes(head + b"\n\n"), block[index + size:]


def _header(line: bytes, number: int) -> tuple[str, str, int]:
    fields = line.decode("latin-1").split()
    length = whole_number(fields[-1]) if len(fields) >= 5 else None
    if length is None:
        raise ArcFormatError(
            f"record {number}: bad header line {line[:200]!r}; expected "
            "'URL IP-address Archive-date Content-type Archive-length'")
    return fields[0], fields[3], length


def _records(stream: _Stream, max_bytes: int) -> Iterator[ArcRecord]:
    number = 0
    while True:
        line = stream.readline(MAX_HEADER_LINE)
        if not line:
            return
        if not line.strip():
            continue  # the newline that ends the previous record
        if not line.endswith(b"\n") and len(line) >= MAX_HEADER_LINE:
            raise ArcFormatError(f"record {number}: header line longer than {MAX_HEADER_LINE}")
        url, content_type, length = _header(line.strip(), number)
        if number == 0 and not url.startswith("filedesc://"):
            raise ArcFormatError("not an ARC file: it does not start with a filedesc:// block")
        if length > max_bytes:
            _skip(stream, length, number)
            yield ArcRecord(url, content_type, length, None, None)
        else:
            block = stream.read(length)
            if len(block) < length:
                raise ArcFormatError(f"record {number} ({url}): truncated, {len(block)} of "
                                     f"{length} bytes")
            if number:
                headers, body = _split_http(block)
                yield ArcRecord(url, content_type, length, headers, body)
        number += 1


def _skip(stream: _Stream, length: int, number: int) -> None:
    left = length
    while left:
        chunk = stream.read(min(left, _CHUNK))
        if not chunk:
            raise ArcFormatError(f"record {number}: truncated")
        left -= len(chunk)


def read_arc(path: Path, max_bytes: int) -> Iterator[ArcRecord]:
    """The records after the version block; bodies over `max_bytes` are skipped unread."""
    with path.open("rb") as raw:
        gzipped = raw.read(2) == b"\x1f\x8b"
        raw.seek(0)
        stream: _Stream = gzip.GzipFile(fileobj=raw, mode="rb") if gzipped else raw
        try:
            yield from _records(stream, max_bytes)
        except (OSError, EOFError, zlib.error) as error:
            raise ArcFormatError(f"corrupt compressed ARC data ({error})") from None
