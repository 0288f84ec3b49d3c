"""Documents read out of the input archives of a job (GATE Cloud input specifications).

`read_documents` yields one `SourceDocument` per archive entry, one entry in memory at a
time. As in the seed (§6):

- ZIP and TAR (plain, gzip, bzip2 or xz): entries are UTF-8 unless `encoding` is given (a
  UTF-8 byte-order mark is dropped); the MIME type is guessed from the entry's name (the
  standard library's built-in table, so it is the same on every host) unless
  `mime_type_override`; `file_extensions` keeps only entries whose names end with one of
  them (with or without the dot, any case). Directories, links and devices are skipped.
- ARC (see `arc`): the encoding is `encoding`, else the charset of the HTTP response's
  Content-Type, else of the record header's content type, else UTF-8; the MIME type is the
  record header's unless `mime_type_override` (the HTTP Content-Type when the header gives
  none); HTTP response headers are removed; `mime_types` keeps only records whose own MIME
  type starts with one of the prefixes. The filedesc:// version block is not a document;
  a record's name is its URL.

Text: text/plain as it is; HTML and XML without their markup (see `markup`; offsets then
refer to the extracted text). Any other type, bytes that do not decode, or an entry over
`max_bytes`, give a document with `text=None` and `error` saying why. An archive that cannot
be read at all, or breaks part way, raises ArchiveError."""

from __future__ import annotations

import codecs
import mimetypes
import tarfile
import zipfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from email.message import Message
from pathlib import Path
from typing import IO

from services.worker.annotation.arc import ArcFormatError, read_arc
from services.worker.annotation.markup import HTML_TYPES, XML_TYPES, html_to_text, xml_to_text

INPUT_TYPES = ("ZIP", "TAR", "ARC")
MAX_DOCUMENT_BYTES = 64 * 1024 * 1024
_CHUNK = 1024 * 1024
_MIME = mimetypes.MimeTypes()  # built-in table only: the host's mime.types is not read
for _type, _extension in (("text/plain", ".text"), ("application/xhtml+xml", ".xhtml")):
    _MIME.add_type(_type, _extension)


class ArchiveError(ValueError):
    """The archive cannot be read; the message says which and why."""


def _why(error: BaseException) -> str:
    """The reason, without the file name an OSError's text gives: that is the worker's
    scratch path, and the message reaches the run's report."""
    if isinstance(error, OSError) and error.strerror:
        return error.strerror
    return str(error)


@dataclass(frozen=True)
class InputOptions:
    type: str  # "ZIP" | "TAR" | "ARC"
    encoding: str | None = None
    mime_type_override: str | None = None
    file_extensions: tuple[str, ...] | None = None  # ZIP and TAR only
    mime_types: tuple[str, ...] | None = None  # ARC only: MIME type prefixes


@dataclass(frozen=True)
class SourceDocument:
    name: str
    mime_type: str
    size: int  # bytes of the entry as stored (for ARC, the record's Archive-length)
    text: str | None
    error: str | None


def _base_type(content_type: str) -> str:
    return content_type.split(";")[0].strip().lower()


def _charset(content_type: str) -> str | None:
    message = Message()
    message["content-type"] = content_type
    charset = message.get_content_charset()
    return charset or None


def guess_mime_type(name: str) -> str:
    """The MIME type for an entry's name; application/octet-stream when unknown."""
    return _MIME.guess_type(name, strict=False)[0] or "application/octet-stream"


def extract(name: str, mime_type: str, data: bytes, encoding: str, size: int) -> SourceDocument:
    """Decode and extract the text of one entry, or say why it cannot be."""
    if mime_type != "text/plain" and mime_type not in HTML_TYPES + XML_TYPES:
        return SourceDocument(name, mime_type, size, None, f"unsupported MIME type {mime_type}"
                              " (text/plain, HTML and XML can be read)")
    try:
        codec = codecs.lookup(encoding).name
        text = data.decode("utf-8-sig" if codec == "utf-8" else codec)
    except LookupError:
        return SourceDocument(name, mime_type, size, None, f"unknown encoding {encoding!r}")
    except UnicodeDecodeError as error:
        return SourceDocument(name, mime_type, size, None,
                              f"cannot be decoded as {encoding}: {error}")
    if mime_type in HTML_TYPES:
        text = html_to_text(text)
    elif mime_type in XML_TYPES:
        text = xml_to_text(text)
    return SourceDocument(name, mime_type, size, text, None)


def _too_big(name: str, mime_type: str, size: int, limit: int) -> SourceDocument:
    return SourceDocument(name, mime_type, size, None,
                          f"larger than the limit of {limit} bytes per document")


def _wanted(name: str, extensions: tuple[str, ...] | None) -> bool:
    if not extensions:
        return True
    lower = name.lower()
    return any(lower.endswith("." + ext.strip().lstrip(".").lower()) for ext in extensions
               if ext.strip().lstrip("."))


def _read_limited(stream: IO[bytes], limit: int) -> bytes | None:
    """The whole stream, or None as soon as it is longer than `limit`."""
    chunks, size = [], 0
    while chunk := stream.read(_CHUNK):
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


def _entry(name: str, stream: IO[bytes], size: int, options: InputOptions,
           limit: int) -> SourceDocument:
    mime_type = _base_type(options.mime_type_override or guess_mime_type(name))
    data = _read_limited(stream, limit)
    if data is None:
        return _too_big(name, mime_type, size, limit)
    return extract(name, mime_type, data, options.encoding or "utf-8", size)


def _zip(path: Path, options: InputOptions, limit: int) -> Iterator[SourceDocument]:
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as error:
        raise ArchiveError(f"{path.name}: not a readable ZIP file ({_why(error)})") from None
    with archive:
        for info in archive.infolist():
            if info.is_dir() or not _wanted(info.filename, options.file_extensions):
                continue
            try:
                with archive.open(info) as stream:
                    document = _entry(info.filename, stream, info.file_size, options, limit)
            except (zipfile.BadZipFile, zlib.error, RuntimeError, NotImplementedError,
                    EOFError) as error:
                mime_type = _base_type(options.mime_type_override
                                       or guess_mime_type(info.filename))
                document = SourceDocument(info.filename, mime_type, info.file_size, None,
                                          f"cannot be read from the ZIP: {error}")
            yield document


def _tar(path: Path, options: InputOptions, limit: int) -> Iterator[SourceDocument]:
    try:
        archive = tarfile.open(path, mode="r:*")
    except (tarfile.TarError, OSError, EOFError) as error:
        raise ArchiveError(f"{path.name}: not a readable TAR file ({_why(error)})") from None
    with archive:
        try:
            for info in archive:
                if not info.isfile() or not _wanted(info.name, options.file_extensions):
                    continue
                stream = archive.extractfile(info)
                assert stream is not None  # a regular file always has a stream
                with stream:
                    yield _entry(info.name, stream, info.size, options, limit)
        except (tarfile.TarError, OSError, EOFError, zlib.error) as error:
            raise ArchiveError(f"{path.name}: corrupt TAR file ({_why(error)})") from None


def _arc(path: Path, options: InputOptions, limit: int) -> Iterator[SourceDocument]:
    prefixes = tuple(p.strip().lower() for p in options.mime_types or () if p.strip())
    try:
        for record in read_arc(path, limit):
            http_type = str(record.http_headers.get("content-type", "")) if record.http_headers \
                else ""
            own_type = record.content_type if record.content_type not in ("", "-", "no-type") \
                else http_type or "application/octet-stream"
            if prefixes and not _base_type(own_type).startswith(prefixes):
                continue
            mime_type = _base_type(options.mime_type_override or own_type)
            if record.content is None:
                yield _too_big(record.url, mime_type, record.length, limit)
                continue
            encoding = (options.encoding or _charset(http_type) or _charset(record.content_type)
                        or "utf-8")
            yield extract(record.url, mime_type, record.content, encoding, record.length)
    except ArcFormatError as error:
        raise ArchiveError(f"{path.name}: {error}") from None
    except OSError as error:
        raise ArchiveError(f"{path.name}: cannot be read ({_why(error)})") from None


def read_documents(path: Path, options: InputOptions, *,
                   max_bytes: int = MAX_DOCUMENT_BYTES) -> Iterator[SourceDocument]:
    """Each document of the archive at `path`, read as `options` say (see the module doc)."""
    kind = options.type.upper()
    if kind not in INPUT_TYPES:
        raise ValueError(f"input type {options.type!r} is not one of {', '.join(INPUT_TYPES)}")
    if options.encoding:
        try:
            codecs.lookup(options.encoding)
        except LookupError:
            raise ValueError(f"unknown encoding {options.encoding!r}") from None
    reader = {"ZIP": _zip, "TAR": _tar, "ARC": _arc}[kind]
    return reader(Path(path), options, max_bytes)
