"""Reading documents out of ZIP, TAR and ARC inputs as the seed's §6 says."""

from __future__ import annotations

import gzip
import io
import tarfile
import zipfile
from pathlib import Path

import pytest

from services.worker.annotation.documents import (
    ArchiveError,
    InputOptions,
    SourceDocument,
    read_documents,
)
from services.worker.annotation.pipeline import Pipeline
from services.worker.annotation.report import RunReport
from services.worker.annotation.selectors import parse_selectors, select

PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256))
HTML = (b"<html><head><title>Visit</title><style>p {color: red}</style>"
        b"<script>var x = '<p>Paris</p>';</script></head><body><h1>Ada &amp; Charles</h1>"
        b"<p>They met   in\n London.</p><p>Then <b>Paris</b>.</p></body></html>")


def make_zip(path: Path, files: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("folder/", b"")
        for name, content in files.items():
            archive.writestr(name, content)
    return path


def make_tar(path: Path, files: dict[str, bytes], mode: str = "w:gz") -> Path:
    with tarfile.open(path, mode) as archive:  # type: ignore[call-overload]
        directory = tarfile.TarInfo("folder")
        directory.type = tarfile.DIRTYPE
        archive.addfile(directory)
        link = tarfile.TarInfo("folder/link.txt")
        link.type = tarfile.SYMTYPE
        link.linkname = "/etc/passwd"
        archive.addfile(link)
        for name, content in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(content)
            archive.addfile(info, io.BytesIO(content))
    return path


def arc_record(url: str, content_type: str, block: bytes) -> bytes:
    header = f"{url} 192.0.2.7 20261122120000 {content_type} {len(block)}\n"
    return header.encode() + block + b"\n"


def make_arc(path: Path, records: list[tuple[str, str, bytes]], gzipped: bool = False) -> Path:
    version = b"1 0 Conveyor tests\nURL IP-address Archive-date Content-type Archive-length\n"
    parts = [arc_record("filedesc://test.arc", "text/plain", version)]
    parts += [arc_record(*record) for record in records]
    data = b"".join(gzip.compress(part) for part in parts) if gzipped else b"".join(parts)
    path.write_bytes(data)
    return path


def http(content_type: str, body: bytes) -> bytes:
    return (b"HTTP/1.1 200 OK\r\nServer: test\r\nContent-Type: " + content_type.encode()
            + b"\r\nContent-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body)


def by_name(documents: list[SourceDocument]) -> dict[str, SourceDocument]:
    return {d.name: d for d in documents}


def test_zip_entries_are_utf8_with_mime_types_from_their_names(tmp_path: Path) -> None:
    text = "Ada Lovelace met Charles Babbage in London — 1833.\n"
    archive = make_zip(tmp_path / "in.zip", {
        "a/plain.txt": text.encode(), "page.html": HTML, "image.png": PNG,
        "bad.txt": "café".encode("latin-1"), "bom.txt": b"\xef\xbb\xbfAda",
        "doc.xml": b"<?xml version='1.0'?><doc><p>Ada &amp; <![CDATA[<Bob>]]></p></doc>",
    })
    documents = by_name(list(read_documents(archive, InputOptions("ZIP"))))

    assert "folder/" not in documents
    plain = documents["a/plain.txt"]
    assert (plain.mime_type, plain.text, plain.error) == ("text/plain", text, None)
    assert plain.size == len(text.encode())
    assert documents["page.html"].mime_type == "text/html"
    assert documents["page.html"].text == "Visit\nAda & Charles\nThey met in London.\nThen Paris."
    assert documents["doc.xml"].text == "Ada & <Bob>"
    assert documents["bom.txt"].text == "Ada"
    image = documents["image.png"]
    assert image.text is None
    assert image.error is not None
    assert image.error.startswith("unsupported MIME type image/png")
    bad = documents["bad.txt"]
    assert bad.text is None
    assert bad.error is not None
    assert "cannot be decoded as utf-8" in bad.error


def test_zip_encoding_and_mime_type_override(tmp_path: Path) -> None:
    archive = make_zip(tmp_path / "in.zip", {"café.txt": "Café in Zürich".encode("latin-1"),
                                             "page.data": b"<p>Caf\xe9</p>"})
    options = InputOptions("ZIP", encoding="ISO-8859-1", mime_type_override="text/html")
    documents = by_name(list(read_documents(archive, options)))
    assert documents["café.txt"].text == "Café in Zürich"
    assert documents["page.data"].text == "Café"
    assert {d.mime_type for d in documents.values()} == {"text/html"}


@pytest.mark.parametrize("extensions", [("txt", "HTML"), (".TXT", ".html"), (" txt ", "html")])
def test_file_extensions_pick_entries(tmp_path: Path, extensions: tuple[str, ...]) -> None:
    archive = make_zip(tmp_path / "in.zip", {"a.txt": b"a", "B.TXT": b"b", "c.html": b"c",
                                             "d.png": PNG, "etxt": b"e", "f.txt.bak": b"f"})
    names = [d.name for d in read_documents(archive, InputOptions("ZIP",
                                                                  file_extensions=extensions))]
    assert names == ["a.txt", "B.TXT", "c.html"]


def test_tar_reads_regular_files_only_with_encoding(tmp_path: Path) -> None:
    archive = make_tar(tmp_path / "in.tar.gz", {
        "docs/one.txt": "Grüße aus Köln".encode("latin-1"), "docs/two.htm": b"<p>x</p>",
        "docs/img.jpg": b"\xff\xd8\xff"})
    documents = list(read_documents(archive, InputOptions("TAR", encoding="latin-1")))
    assert [(d.name, d.mime_type) for d in documents] == [
        ("docs/one.txt", "text/plain"), ("docs/two.htm", "text/html"),
        ("docs/img.jpg", "image/jpeg")]
    assert documents[0].text == "Grüße aus Köln"
    assert documents[2].error is not None
    assert "unsupported MIME type" in documents[2].error
    only_txt = read_documents(archive, InputOptions("TAR", file_extensions=("txt",)))
    assert [d.error is not None for d in only_txt] == [True]  # latin-1 bytes are not UTF-8


def test_plain_tar_and_streaming(tmp_path: Path) -> None:
    archive = make_tar(tmp_path / "in.tar", {f"{i}.txt": f"doc {i}".encode() for i in range(3)},
                       mode="w")
    documents = read_documents(archive, InputOptions("TAR"))
    assert next(documents).text == "doc 0"
    assert [d.text for d in documents] == ["doc 1", "doc 2"]


@pytest.mark.parametrize("gzipped", [False, True])
def test_arc_records_with_http_headers_charsets_and_types(tmp_path: Path, gzipped: bool) -> None:
    archive = make_arc(tmp_path / ("in.arc.gz" if gzipped else "in.arc"), [
        ("http://example.org/", "text/html",
         http("text/html; charset=ISO-8859-1", b"<p>Caf\xe9 in Paris</p>")),
        ("http://example.org/plain", "text/plain", b"no http headers here"),
        ("http://example.org/logo.png", "image/png", http("image/png", PNG)),
        ("http://example.org/u8", "text/plain", http("text/plain", "Łódź".encode())),
    ], gzipped=gzipped)
    documents = by_name(list(read_documents(archive, InputOptions("ARC"))))
    assert list(documents) == ["http://example.org/", "http://example.org/plain",
                               "http://example.org/logo.png", "http://example.org/u8"]
    assert documents["http://example.org/"].text == "Café in Paris"
    assert documents["http://example.org/plain"].text == "no http headers here"
    assert documents["http://example.org/u8"].text == "Łódź"
    logo = documents["http://example.org/logo.png"]
    assert logo.mime_type == "image/png"
    assert logo.text is None
    assert logo.size == len(http("image/png", PNG))


def test_arc_mime_types_encoding_and_override(tmp_path: Path) -> None:
    archive = make_arc(tmp_path / "in.arc", [
        ("http://a/", "text/html", http("text/html; charset=utf-8", b"<p>Caf\xe9</p>")),
        ("http://b/", "text/plain", b"Caf\xe9 <p>"),
        ("http://c/", "image/gif", b"GIF89a"),
    ])
    only_text = InputOptions("ARC", mime_types=("text/",), encoding="latin-1")
    documents = list(read_documents(archive, only_text))
    assert [(d.name, d.text) for d in documents] == [("http://a/", "Café"),
                                                     ("http://b/", "Café <p>")]
    plain = InputOptions("ARC", mime_types=("text/plain", "image"), mime_type_override="text/plain",
                         encoding="latin-1")
    documents = list(read_documents(archive, plain))
    assert [(d.name, d.mime_type) for d in documents] == [("http://b/", "text/plain"),
                                                          ("http://c/", "text/plain")]
    assert documents[1].text == "GIF89a"


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"not an arc file\n", "bad header line"),
        (b"http://x/ 1.2.3.4 2026 text/plain 5\nhello\n", "does not start with a filedesc"),
        (b"filedesc://x 0 2026 text/plain 100\nshort", "truncated"),
        # A length that str.isdigit accepts and int refuses: superscript two (latin-1).
        (b"filedesc://x 0 2026 text/plain \xb2\nab\n", "bad header line"),
        (b"filedesc://x 0 2026 text/plain " + b"9" * 5000 + b"\nab\n", "bad header line"),
        (gzip.compress(b"filedesc://x 0 2026 text/plain 2\nab\n")[:-6], "corrupt compressed"),
    ],
)
def test_corrupt_arc_raises_archive_error(tmp_path: Path, data: bytes, message: str) -> None:
    path = tmp_path / "bad.arc"
    path.write_bytes(data)
    with pytest.raises(ArchiveError, match=message):
        list(read_documents(path, InputOptions("ARC")))


def test_corrupt_zip_and_tar_raise_archive_error(tmp_path: Path) -> None:
    junk = tmp_path / "junk.bin"
    junk.write_bytes(b"this is not an archive at all" * 10)
    with pytest.raises(ArchiveError, match="not a readable ZIP"):
        list(read_documents(junk, InputOptions("ZIP")))
    with pytest.raises(ArchiveError, match="not a readable TAR"):
        list(read_documents(junk, InputOptions("TAR")))
    tar = make_tar(tmp_path / "cut.tar", {"a.txt": b"a" * 5000, "b.txt": b"b" * 5000}, mode="w")
    tar.write_bytes(tar.read_bytes()[:9000])  # inside b.txt
    with pytest.raises(ArchiveError, match="corrupt TAR"):
        list(read_documents(tar, InputOptions("TAR")))


def test_a_damaged_zip_member_is_a_document_error(tmp_path: Path) -> None:
    archive = make_zip(tmp_path / "in.zip", {"a.txt": b"Ada " * 100, "b.txt": b"fine"})
    data = bytearray(archive.read_bytes())
    offset = data.index(b"a.txt") + len("a.txt") + 5  # inside a.txt's deflated data
    data[offset] ^= 0xFF
    archive.write_bytes(bytes(data))
    documents = by_name(list(read_documents(archive, InputOptions("ZIP"))))
    assert documents["a.txt"].error is not None
    assert documents["a.txt"].error.startswith("cannot be read from the ZIP")
    assert documents["b.txt"].text == "fine"


def test_documents_over_the_limit_are_errors_not_read(tmp_path: Path) -> None:
    archive = make_zip(tmp_path / "in.zip", {"big.txt": b"x" * 5000, "small.txt": b"ok"})
    documents = by_name(list(read_documents(archive, InputOptions("ZIP"), max_bytes=1000)))
    assert documents["big.txt"].error == "larger than the limit of 1000 bytes per document"
    assert documents["small.txt"].text == "ok"


def test_bad_options(tmp_path: Path) -> None:
    archive = make_zip(tmp_path / "in.zip", {"a.txt": b"a"})
    with pytest.raises(ValueError, match="not one of ZIP, TAR, ARC"):
        read_documents(archive, InputOptions("RAR"))
    with pytest.raises(ValueError, match="unknown encoding 'klingon'"):
        read_documents(archive, InputOptions("ZIP", encoding="klingon"))


def test_example_documents_through_the_pipeline_into_a_report(tmp_path: Path) -> None:
    example = Path(__file__).resolve().parents[2] / "examples" / "gate"
    files = {p.name: p.read_bytes() for p in sorted((example / "documents").iterdir())}
    archive = make_zip(tmp_path / "bundle.zip", {**files, "photo.png": PNG})
    pipeline = Pipeline.from_directory(example / "application")
    report = RunReport()
    people: set[str] = set()
    for source in read_documents(archive, InputOptions("ZIP")):
        if report.record(source):
            continue
        assert source.text is not None
        document = pipeline.annotate(source.name, source.text)
        chosen = select(document.annotations, parse_selectors(":Person"))
        people |= {document.text[a.start:a.end] for a in chosen}
        report.processed(source, len(chosen))

    summary = report.to_json()
    assert people == {"Ada Lovelace", "Charles Babbage", "Ada", "Isambard Kingdom Brunel",
                      "Brunel", "Florence Nightingale", "Marie Curie"}
    assert summary["documentsProcessed"] == len(files) == 4
    assert summary["documentsFailed"] == 1
    assert summary["failures"][0]["document"] == "photo.png"
    assert summary["failures"][0]["reason"].startswith("unsupported MIME type image/png")
    assert summary["annotationsWritten"] == 7
    assert summary["bytesRead"] == sum(map(len, files.values())) + len(PNG)
    assert summary["seconds"] >= 0
