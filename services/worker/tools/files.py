"""`file:checksum` and `archive:extract` (ZIP and TAR with gzip, bz2 or xz). Extraction
refuses entries that would leave the destination, links, and archives that unpack to more
than `CONVEYOR_ARCHIVE_MAX_BYTES`, to more entries than `CONVEYOR_ARCHIVE_MAX_ENTRIES`, or to
more than `CONVEYOR_ARCHIVE_MAX_RATIO` times their own size (zip bombs): checked against
what the archive declares and again against the bytes actually written."""

from __future__ import annotations

import asyncio
import hashlib
import posixpath
import shutil
import tarfile
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from minio.error import S3Error

from services.worker.context import ToolContext, ToolError
from shared.params import check_printable
from shared.toolspecs import ArchiveExtract, FileChecksum

CHUNK = 1024 * 1024


async def file_checksum(context: ToolContext, parameters: FileChecksum) -> None:
    digest = hashlib.new(parameters.algorithm)
    size = 0
    try:
        async for chunk in context.objects.iter_object(context.workspace + parameters.source):
            digest.update(chunk)
            size += len(chunk)
    except S3Error as exc:
        if exc.code == "NoSuchKey":
            raise ToolError(f"no file {parameters.source!r} in the job workspace") from None
        raise
    context.result.update(algorithm=parameters.algorithm, checksum=digest.hexdigest(),
                          size=size, source=parameters.source)
    await context.log(f"{parameters.algorithm} {digest.hexdigest()}  {parameters.source}")


@dataclass(frozen=True)
class Entry:
    name: str
    size: int
    is_file: bool
    is_dir: bool
    is_link: bool
    opener: object


def safe_name(name: str) -> str:
    """The entry's path inside the destination, or ToolError if it would leave it."""
    try:
        check_printable(name)
    except ValueError as exc:
        raise ToolError(f"refusing archive entry {name!r}: its name {exc}") from None
    normal = posixpath.normpath(name.replace("\\", "/"))
    if name.startswith(("/", "\\")) or normal == ".." or normal.startswith("../") or (
        len(name) > 1 and name[1] == ":"
    ):
        raise ToolError(f"refusing archive entry {name!r}: it leaves the destination")
    return normal


def zip_entries(archive: zipfile.ZipFile) -> Iterator[Entry]:
    for info in archive.infolist():
        mode = info.external_attr >> 16
        is_link = (mode & 0o170000) == 0o120000
        yield Entry(info.filename, info.file_size, not info.is_dir() and not is_link,
                    info.is_dir(), is_link, info)


def tar_entries(archive: tarfile.TarFile) -> Iterator[Entry]:
    for member in archive.getmembers():
        yield Entry(member.name, member.size, member.isfile(), member.isdir(),
                    member.issym() or member.islnk() or not (member.isfile() or member.isdir()),
                    member)


# Below this many unpacked bytes the ratio is not checked: a small archive of very
# compressible files (a few MB of logs or zeros) is no danger, only a large expansion is.
RATIO_FLOOR = 1024 * 1024


@dataclass(frozen=True)
class Limits:
    """What one archive may unpack to: entries, bytes, and bytes per byte of archive."""

    max_bytes: int
    max_entries: int
    max_ratio: float

    def budget(self, archive_size: int) -> int:
        """Bytes the archive may unpack to: the size limit, or less for a small archive."""
        return min(self.max_bytes, max(RATIO_FLOOR, int(self.max_ratio * archive_size)))

    def refusal(self, unpacked: str, archive_size: int) -> ToolError:
        if self.budget(archive_size) == self.max_bytes:
            return ToolError(f"refusing archive: it unpacks to {unpacked} bytes, more than "
                             f"the limit of {self.max_bytes}")
        return ToolError(f"refusing archive: it unpacks to {unpacked} bytes, more than "
                         f"{self.max_ratio:g} times its own {archive_size} bytes (the limit "
                         "of the compression ratio)")


class OverBudgetError(Exception):
    """More bytes came out of the archive than it may unpack to."""


def copy_within(reader: IO[bytes], writer: IO[bytes], spent: int, budget: int) -> int:
    """Copy an entry, counting what is really written against the budget (an archive can
    declare less than it holds); returns the bytes spent so far."""
    while chunk := reader.read(CHUNK):
        spent += len(chunk)
        if spent > budget:
            raise OverBudgetError(spent)
        writer.write(chunk)
    return spent


def extract(source: Path, target: Path, limits: Limits,
            extensions: list[str] | None) -> list[Path]:
    """Unpack `source` into `target` (blocking); returns the files written. Limits are
    checked on what the archive declares, and again on the bytes actually written."""
    written: list[Path] = []
    archive_size = source.stat().st_size
    budget = limits.budget(archive_size)
    archive: zipfile.ZipFile | tarfile.TarFile
    if zipfile.is_zipfile(source):
        archive = zip_archive = zipfile.ZipFile(source)
        entries = list(zip_entries(zip_archive))
    elif tarfile.is_tarfile(source):
        archive = tar_archive = tarfile.open(source)
        entries = list(tar_entries(tar_archive))
    else:
        raise ToolError(f"{source.name} is neither a ZIP nor a TAR archive")
    with archive:
        if len(entries) > limits.max_entries:
            raise ToolError(f"refusing archive: {len(entries)} entries, more than the limit "
                            f"of {limits.max_entries}")
        declared = sum(entry.size for entry in entries)
        if declared > budget:
            raise limits.refusal(str(declared), archive_size)
        spent = 0
        for entry in entries:
            name = safe_name(entry.name)
            if entry.is_link:
                raise ToolError(f"refusing archive entry {entry.name!r}: links are not "
                                "extracted")
            if entry.is_dir or not entry.is_file:
                continue
            if extensions and not name.lower().endswith(tuple(extensions)):
                continue
            path = target / name
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
                with _open(archive, entry) as reader, path.open("wb") as writer:
                    spent = copy_within(reader, writer, spent, budget)
            except OverBudgetError:
                raise limits.refusal(f"more than {budget}", archive_size) from None
            except OSError as exc:  # e.g. a file and a folder of the same name
                raise ToolError(f"cannot extract archive entry {entry.name!r}: "
                                f"{exc.strerror or type(exc).__name__}") from None
            written.append(path)
    return written


def _open(archive: zipfile.ZipFile | tarfile.TarFile, entry: Entry) -> IO[bytes]:
    if isinstance(archive, zipfile.ZipFile):
        assert isinstance(entry.opener, zipfile.ZipInfo)
        return archive.open(entry.opener)
    assert isinstance(entry.opener, tarfile.TarInfo)
    reader = archive.extractfile(entry.opener)
    if reader is None:
        raise ToolError(f"cannot read archive entry {entry.name!r}")
    return reader


def archive_limits(context: ToolContext) -> Limits:
    settings = context.settings
    return Limits(settings.archive_max_bytes, settings.archive_max_entries,
                  settings.archive_max_ratio)


async def archive_extract(context: ToolContext, parameters: ArchiveExtract) -> None:
    local = await context.fetch(parameters.source)
    target = context.scratch / "extracted"
    try:
        files = await asyncio.to_thread(
            extract, local, target, archive_limits(context), parameters.extensions)
    except (tarfile.TarError, zipfile.BadZipFile, EOFError, OSError) as exc:
        # Not `{exc}` alone: an OSError's text names the scratch path.
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise ToolError(f"{parameters.source} is a damaged archive: {reason}") from None
    except ToolError:
        await asyncio.to_thread(shutil.rmtree, target, True)
        raise
    for index, file in enumerate(files, start=1):
        await context.store(file, f"{parameters.destination}/{file.relative_to(target).as_posix()}")
        await context.progress(100.0 * index / max(1, len(files)))
    context.result["files"] = len(files)
    await context.log(f"extracted {len(files)} file(s) into {parameters.destination}/")
