"""`gate_job`: documents/s through a `gate:annotate` task on the platform (a worker process
reading a ZIP from S3, annotating with the example application, writing one JSON file per
document to S3, reporting as it goes), against the plain loop doing the same in one process:
read the ZIP, annotate, render, `put_object` each file with the bare minio client."""

from __future__ import annotations

import asyncio
import io
import tempfile
import time
import zipfile
from pathlib import Path
from typing import Any

import urllib3

from bench.common import row
from bench.transfer import run_job
from services.worker.annotation.documents import InputOptions, read_documents
from services.worker.annotation.formats import render
from services.worker.annotation.pipeline import Pipeline
from services.worker.annotation.selectors import parse_selectors, select
from shared.objects import make_client, open_objects
from shared.settings import Settings

EXAMPLES = Path(__file__).resolve().parent.parent / "examples" / "gate"
APPLICATION_KEY = "gate/bench/application/app.zip"
DOCUMENTS_KEY = "data/bench/docs.zip"


def application_zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for path in sorted((EXAMPLES / "application").rglob("*")):
            if path.is_file():
                archive.write(path, path.relative_to(EXAMPLES / "application").as_posix())
    return buffer.getvalue()


def documents_zip(count: int) -> bytes:
    """`count` documents: the examples over and over, each under a name of its own."""
    texts = [path.read_bytes() for path in sorted((EXAMPLES / "documents").glob("*.txt"))]
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for index in range(count):
            archive.writestr(f"doc-{index:05d}.txt", texts[index % len(texts)])
    return buffer.getvalue()


def task_seconds(job: dict[str, Any]) -> float:
    task = job["tasks"]["t1"]
    return float((task["finished"] - task["started"]).total_seconds())


async def platform_rate(settings: Settings, count: int) -> float:
    bucket = settings.s3_bucket
    job = await run_job(settings, [{"tool": "gate:annotate", "parameters": {
        "application": {"url": f"s3://{bucket}/{APPLICATION_KEY}"},
        "inputs": [{"id": "1", "source": f"s3://{bucket}/{DOCUMENTS_KEY}", "type": "ZIP"}],
        "outputs": [{"id": "1", "type": "JSON"}],
        "output": {"url": f"s3://{bucket}/gate/bench/results/"},
        "report": f"s3://{bucket}/gate/bench/reports/run.json",
    }}])
    processed = job["tasks"]["t1"]["result"]["documentsProcessed"]
    if processed != count:
        raise RuntimeError(f"the task processed {processed} documents of {count}")
    return count / task_seconds(job)


def plain_loop(settings: Settings) -> float:
    """The same work, written the obvious way, timed from the same starting point: the
    application and the archive still in S3."""
    client = make_client(settings, urllib3.PoolManager())
    started = time.perf_counter()
    pipeline = Pipeline.from_zip(client.get_object(settings.s3_bucket, APPLICATION_KEY).read())
    selectors = parse_selectors(pipeline.default_selectors)
    with tempfile.TemporaryDirectory() as folder:
        archive = Path(folder) / "docs.zip"
        client.fget_object(settings.s3_bucket, DOCUMENTS_KEY, str(archive))
        count = 0
        for source in read_documents(archive, InputOptions(type="ZIP")):
            assert source.text is not None
            document = pipeline.annotate(source.name, source.text)
            data = render(document, "JSON", select(document.annotations, selectors))
            client.put_object(settings.s3_bucket, f"gate/bench/plain/{source.name}.json",
                              io.BytesIO(data), len(data), content_type="application/json")
            count += 1
    return count / (time.perf_counter() - started)


async def run(settings: Settings, count: int) -> list[dict[str, Any]]:
    application, documents = application_zip(), documents_zip(count)
    async with open_objects(settings) as objects:
        await objects.upload_bytes(APPLICATION_KEY, application)
        await objects.upload_bytes(DOCUMENTS_KEY, documents)
    ours = await platform_rate(settings, count)
    plain = await asyncio.to_thread(plain_loop, settings)
    return [row("gate_job", ours, "docs/s", "plain_loop", plain,
                f"{count} documents, 1 JSON output each, S3 writes included; ours by the "
                "task's own start and end")]
