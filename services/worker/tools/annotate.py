"""`gate:annotate` runs a GATE Cloud-style job: the application's annotation pipeline over
every document of the input archives, each output spec written as a file per document
(`<document name><fileExtension>`) or POSTed to a Mímir index. A document that cannot be
read or sent fails alone: the run goes on and the report says which and why. The report is
rewritten as the run goes and when it ends, stopped or not, so a stopped run's report says
what it did."""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
import time
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Generic, TypeVar

import aiohttp
from yarl import URL

from services.worker.annotation.documents import (
    ArchiveError,
    InputOptions,
    SourceDocument,
    read_documents,
)
from services.worker.annotation.formats import render
from services.worker.annotation.model import AnnotatedDocument, Annotation
from services.worker.annotation.pipeline import Pipeline, PipelineError
from services.worker.annotation.report import RunReport
from services.worker.annotation.results import read_results
from services.worker.annotation.rules import RuleTimeout
from services.worker.annotation.selectors import Selector, parse_selectors, select
from services.worker.context import ToolContext, ToolError
from services.worker.tools.s3access import S3Location, list_keys, locate_own, s3_failure
from shared.errors import TransientError
from shared.gate import (
    CONTENT_TYPES,
    DEFAULT_EXTENSIONS,
    GateAnnotate,
    GateInput,
    GateLocation,
    GateOutput,
)
from shared.netguard import ForbiddenAddressError, GuardedResolver, check_url
from shared.params import split_s3_url
from shared.retry import RetryPolicy, retrying

# Platform areas this internal tool may read: the gateway put the job's files there and
# checked that the caller owns them.
PLATFORM_PREFIXES = ("gate/", "data/")
MAX_APPLICATION_BYTES = 256 * 1024 * 1024
REPORT_INTERVAL = 2.0
# Documents annotated and written at once: each waits mostly on S3 or the Mímir index, so a
# few in flight keep the worker busy; they bound memory too (each holds its text).
DOCUMENTS_IN_FLIGHT = 8
# Three tries of a document's outputs, 0.5 s and 1 s apart; each redoes only what is left.
DOCUMENT_RETRY = RetryPolicy(max_attempts=3, base_delay=0.5, max_delay=1.0, jitter=0.0)
# Outputs recorded on the task (the job view lists them); all are written whatever the count.
MAX_RECORDED_OUTPUTS = 1000

T = TypeVar("T")


class ThreadedStream(Generic[T]):
    """An iterator advanced in worker threads, one step at a time, and closed explicitly.
    Left to the garbage collector, an abandoned archive reader (a stopped run) would be
    finalized in whatever order its cycle is collected, its file object possibly before the
    generator that would have closed it; `close` waits for a step still running in its thread
    (a cancelled await does not stop that thread)."""

    def __init__(self, items: Iterator[T]) -> None:
        self._items = items
        self._lock = threading.Lock()

    def next(self) -> T | None:
        with self._lock:
            return next(self._items, None)

    def close(self) -> None:
        with self._lock:
            close = getattr(self._items, "close", None)
            if close is not None:
                close()


async def gate_place(context: ToolContext, location: GateLocation) -> tuple[S3Location, str]:
    """The client and key of a location: the platform's storage (its job areas only) or the
    user's own bucket with the user's keys (anonymous without)."""
    bucket, key = split_s3_url(location.url)
    if location.own:
        return await locate_own(context, bucket, location.credentials), key
    if bucket != context.objects.bucket or not key.startswith(PLATFORM_PREFIXES):
        raise ToolError(f"{location.url} is outside the areas of the platform's storage "
                        "this tool may use")
    return S3Location(context.objects.client, bucket, True), key


async def fetch(place: S3Location, key: str, target: Path, what: str) -> int:
    try:
        return await place.objects.download_file(key, target)
    except Exception as exc:
        raise s3_failure(exc, f"reading the {what} {place.describe(key)}") from exc


async def put(place: S3Location, key: str, data: bytes, content_type: str) -> None:
    try:
        await place.objects.upload_bytes(key, data, content_type)
    except Exception as exc:
        raise s3_failure(exc, f"writing {place.describe(key)}") from exc


def read_object(place: S3Location, key: str) -> bytes:
    """A small object's bytes (called from the thread that reads the documents)."""
    try:
        response = place.client.get_object(place.bucket, key)
    except Exception as exc:
        raise s3_failure(exc, f"reading {place.describe(key)}") from exc
    try:
        return bytes(response.read())
    finally:
        response.close()
        response.release_conn()


def count_entries(path: Path, kind: str) -> int | None:
    """How many entries an archive holds (for progress), where that is cheap to know: a
    ZIP's directory says; a TAR or ARC would have to be read (and unpacked) twice."""
    if kind == "ZIP":
        with contextlib.suppress(OSError, zipfile.BadZipFile), zipfile.ZipFile(path) as archive:
            return sum(1 for info in archive.infolist() if not info.is_dir())
    return None


def output_name(name: str) -> str:
    """A document's name as a key under the output prefix: archive entry names may carry
    `..` or a leading `/`, ARC record names are URLs; none may climb out of the prefix."""
    parts = [part.rstrip(":") for part in name.replace("\\", "/").split("/")]
    kept = [part for part in parts if part not in {"", ".", ".."}]
    return "/".join(kept) or "document"


@dataclass
class Ledger:
    """What a run did, saved as its report: every REPORT_INTERVAL, and once it ends."""

    place: S3Location
    key: str
    report: RunReport = field(default_factory=RunReport)
    files_written: int = 0
    documents_indexed: int = 0
    ended: bool = False  # nothing more will be written: finished, stopped or failed
    error: str | None = None  # why the run failed
    _saved: float = 0.0

    def summary(self) -> dict[str, Any]:
        return {**self.report.to_json(), "filesWritten": self.files_written,
                "documentsIndexed": self.documents_indexed, "ended": self.ended,
                "error": self.error}

    async def save(self, *, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._saved < REPORT_INTERVAL:
            return
        self._saved = now
        await put(self.place, self.key, json.dumps(self.summary()).encode(), "application/json")


@dataclass
class Run:
    context: ToolContext
    parameters: GateAnnotate
    pipeline: Pipeline
    output: S3Location
    output_prefix: str
    ledger: Ledger
    taken: set[str] = field(default_factory=set)  # output names used so far

    def selected(self, spec: GateOutput, document: AnnotatedDocument) -> list[Annotation]:
        """The spec's selectors, else the pipeline's defaults, else every annotation."""
        chosen: tuple[Selector, ...] = ()
        if spec.annotation_selectors:
            chosen = parse_selectors(spec.annotation_selectors)
        elif self.pipeline.default_selectors:
            chosen = parse_selectors(self.pipeline.default_selectors)
        return select(document.annotations, chosen) if chosen else list(document.annotations)

    async def write(self, spec: GateOutput, document: AnnotatedDocument, name: str) -> None:
        data = render(document, spec.type, self.selected(spec, document))
        key = self.output_prefix + name + (
            spec.file_extension or DEFAULT_EXTENSIONS[spec.type])
        await put(self.output, key, data, CONTENT_TYPES[spec.type])
        self.ledger.files_written += 1
        if len(self.context.outputs) < MAX_RECORDED_OUTPUTS:
            self.context.add_output(key, len(data),
                                    bucket=None if self.output.platform else self.output.bucket)

    def unique_name(self, name: str) -> str:
        """The document's name under the output prefix; a name met before (the same entry
        in two inputs) gets `~2`, `~3`… so no file overwrites another."""
        base = candidate = output_name(name)
        number = 1
        while candidate in self.taken:
            number += 1
            candidate = f"{base}~{number}"
        self.taken.add(candidate)
        return candidate

    async def process(self, source: SourceDocument, session: aiohttp.ClientSession) -> None:
        if self.ledger.report.record(source):
            await self.context.log(f"{source.name}: skipped: {source.error}", "warning")
            return
        assert source.text is not None
        try:
            document = await asyncio.to_thread(self.pipeline.annotate, source.name,
                                               source.text)
        except RuleTimeout as exc:
            self.ledger.report.failed(source.name, str(exc), source.size)
            await self.context.log(f"{source.name}: failed: {exc}", "warning")
            return
        name = self.unique_name(document.name)
        sent: set[int] = set()
        try:
            # One document's trouble (the index busy, S3 hiccup) is retried here, not by
            # running the whole task again.
            await retrying(lambda _: self.send(document, name, session, sent), DOCUMENT_RETRY,
                           (TransientError,))
        except (TransientError, ToolError) as exc:
            self.ledger.report.failed(source.name, str(exc), source.size)
            await self.context.log(f"{source.name}: failed: {exc}", "warning")
            return
        self.ledger.report.processed(source, len(document.annotations))

    async def send(self, document: AnnotatedDocument, name: str,
                   session: aiohttp.ClientSession, sent: set[int]) -> None:
        """Each output of the document not in `sent` (the outputs, by position, already
        written or indexed: a retry after one output failed redoes only what is left)."""
        for number, spec in enumerate(self.parameters.outputs):
            if number in sent:
                continue
            if spec.type == "MIMIR":
                await index(self.context, session, spec, document)
                self.ledger.documents_indexed += 1
            else:
                await self.write(spec, document, name)
            sent.add(number)


async def index(context: ToolContext, session: aiohttp.ClientSession, spec: GateOutput,
                document: AnnotatedDocument) -> None:
    """Send the whole document (GATE XML, every annotation) to the Mímir index."""
    assert spec.index_url is not None
    url = URL(spec.index_url)
    allow = context.settings.allow_private_networks
    check_url(url, allow)
    headers = {"Content-Type": "application/xml", "X-Document-Name": document.name}
    if spec.username is not None:
        password = spec.password.get_secret_value() if spec.password else ""
        headers["Authorization"] = aiohttp.encode_basic_auth(spec.username, password)
    body = render(document, "GATE_XML", document.annotations)
    try:
        async with session.post(url, data=body, allow_redirects=False,
                                headers=headers) as response:
            if response.status >= 500 or response.status == 429:
                raise TransientError(f"the Mímir index answered {response.status}")
            if response.status >= 300:
                raise ToolError(f"the Mímir index answered {response.status} "
                                f"{response.reason or ''}".strip())
    except aiohttp.ClientConnectorError as exc:
        if isinstance(exc.os_error, ForbiddenAddressError):
            raise ToolError(str(exc.os_error)) from None
        raise TransientError(f"cannot reach the Mímir index: {exc.os_error}") from exc


async def load_pipeline(context: ToolContext, location: GateLocation) -> Pipeline:
    place, key = await gate_place(context, location)
    try:
        size = await place.objects.size(key)
    except Exception as exc:
        raise s3_failure(exc, f"reading the application {place.describe(key)}") from exc
    if size > MAX_APPLICATION_BYTES:
        raise ToolError(f"the application is {size} bytes; the limit is "
                        f"{MAX_APPLICATION_BYTES}")
    target = context.scratch / "application.zip"
    await fetch(place, key, target, "application")
    try:
        pipeline = await asyncio.to_thread(Pipeline.from_zip, target.read_bytes())
    except PipelineError as exc:
        raise ToolError(f"the application is not a pipeline this platform runs: {exc}") from None
    await context.log(f"application {pipeline.name!r} loaded from {location.url}")
    return pipeline


async def gate_annotate(context: ToolContext, parameters: GateAnnotate) -> None:
    place, key = await gate_place(context, GateLocation(url=parameters.report))
    ledger = Ledger(place, key)
    try:
        pipeline = await load_pipeline(context, parameters.application)
        output, output_prefix = await gate_place(context, parameters.output)
        run = Run(context, parameters, pipeline, output, output_prefix, ledger)
        connector = aiohttp.TCPConnector(
            resolver=GuardedResolver(context.settings.allow_private_networks))
        timeout = aiohttp.ClientTimeout(total=None, sock_connect=15, sock_read=120)
        async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
            for number, spec in enumerate(parameters.inputs):
                await annotate_input(run, session, number, spec)
    except Exception as exc:
        ledger.error = context.redact(str(exc)) or type(exc).__name__
        raise
    finally:
        # Also when the run is stopped or fails: the report says how far it got, and that it
        # is final (the gateway settles the run's accounting on it).
        ledger.ended = True
        with contextlib.suppress(Exception):
            await asyncio.shield(ledger.save(force=True))
    summary = ledger.summary()
    context.result.update(documentsProcessed=summary["documentsProcessed"],
                          documentsFailed=summary["documentsFailed"],
                          filesWritten=summary["filesWritten"])
    context.count("bytes_in", summary["bytesRead"])
    await context.progress(100.0, force=True)
    await context.log(f"done: {summary['documentsProcessed']} documents annotated, "
                      f"{summary['documentsFailed']} failed, {ledger.files_written} files written")


async def annotate_input(run: Run, session: aiohttp.ClientSession, number: int,
                         spec: GateInput) -> None:
    context, inputs = run.context, run.parameters.inputs
    place, key = await gate_place(context, GateLocation(url=spec.source))
    archive = context.scratch / f"input-{spec.id}"
    items: Iterator[SourceDocument]
    if spec.type == "RESULTS":
        keys = await list_keys(place, key)
        total: int | None = len(keys)
        await context.log(f"input {spec.id}: the {total} output files of another run")
        items = read_results((k.removeprefix(key), read_object(place, k)) for k in keys)
    else:
        size = await fetch(place, key, archive, f"archive of input {spec.id}")
        options = InputOptions(
            type=spec.type, encoding=spec.encoding, mime_type_override=spec.mime_type_override,
            file_extensions=tuple(spec.file_extensions) if spec.file_extensions else None,
            mime_types=tuple(spec.mime_types) if spec.mime_types else None)
        total = await asyncio.to_thread(count_entries, archive, spec.type)
        await context.log(f"input {spec.id}: {spec.type} archive of {size} bytes"
                          + (f", {total} entries" if total is not None else ""))
        items = iter(await asyncio.to_thread(read_documents, archive, options))
    documents = ThreadedStream(items)
    done = 0
    slots = asyncio.Semaphore(DOCUMENTS_IN_FLIGHT)

    async def one(source: SourceDocument) -> None:
        nonlocal done
        try:
            await run.process(source, session)
        finally:
            slots.release()
        done += 1
        share = done / total if total else 1 - 1 / (1 + done / 50)
        await context.progress(100.0 * (number + min(share, 1.0)) / len(inputs))
        await run.ledger.save()

    try:
        async with asyncio.TaskGroup() as group:
            while True:
                await slots.acquire()
                try:
                    source = await asyncio.to_thread(documents.next)
                except ArchiveError as exc:
                    run.ledger.report.failed(f"input {spec.id}", str(exc))
                    await context.log(f"input {spec.id}: {exc}", "error")
                    break
                if source is None:
                    break
                group.create_task(one(source))
    except BaseExceptionGroup as group_error:
        # The first failure, as itself: its class (transient or not) decides the retry.
        raise group_error.exceptions[0] from None
    finally:
        await asyncio.shield(asyncio.to_thread(documents.close))
        with contextlib.suppress(OSError):
            archive.unlink()

