"""Object storage against a real S3 server: large objects stream with bounded memory."""

from __future__ import annotations

import hashlib
import os
import tracemalloc
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import aiohttp
import pytest

from shared.objects import ObjectStore, open_objects
from shared.settings import Settings

SIZE = 50 * 1024 * 1024
# Well under the object's size: a transfer that buffered the object whole would exceed it.
MEMORY_BOUND = 24 * 1024 * 1024


@pytest.fixture
async def objects(settings: Settings) -> AsyncIterator[ObjectStore]:
    async with open_objects(settings) as store:
        yield store


def write_random_file(path: Path, size: int) -> str:
    digest = hashlib.sha256()
    block = os.urandom(1024 * 1024)
    with path.open("wb") as handle:
        for index in range(size // len(block)):
            chunk = block[:-4] + index.to_bytes(4, "big")
            digest.update(chunk)
            handle.write(chunk)
    return digest.hexdigest()


def file_digest(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(1024 * 1024):
            digest.update(chunk)
    return digest.hexdigest()


async def test_50mb_object_streams_up_and_down_with_bounded_memory(
    objects: ObjectStore, tmp_path: Path
) -> None:
    source = tmp_path / "big.bin"
    expected = write_random_file(source, SIZE)

    tracemalloc.start()
    try:
        assert await objects.upload_file("jobs/x/big.bin", source) == SIZE
        _, upload_peak = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        target = tmp_path / "back.bin"
        assert await objects.download_file("jobs/x/big.bin", target) == SIZE
        _, download_peak = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        streamed = hashlib.sha256()
        async for chunk in objects.iter_object("jobs/x/big.bin"):
            streamed.update(chunk)
        _, iterate_peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    assert file_digest(target) == expected
    assert streamed.hexdigest() == expected
    assert await objects.size("jobs/x/big.bin") == SIZE
    assert upload_peak < MEMORY_BOUND, upload_peak
    assert download_peak < MEMORY_BOUND, download_peak
    assert iterate_peak < MEMORY_BOUND, iterate_peak


async def test_bucket_is_ensured_and_objects_listed(
    settings: Settings, objects: ObjectStore
) -> None:
    async with open_objects(settings) as again:  # ensuring an existing bucket is harmless
        await again.ping()
    await objects.upload_bytes("jobs/a/one.txt", b"1")
    await objects.upload_bytes("jobs/a/two.txt", b"22")
    await objects.upload_bytes("jobs/b/three.txt", b"333")
    assert await objects.list_keys("jobs/a/") == ["jobs/a/one.txt", "jobs/a/two.txt"]
    await objects.delete("jobs/a/one.txt")
    assert await objects.list_keys("jobs/a/") == ["jobs/a/two.txt"]


async def test_presigned_url_downloads_the_object(objects: ObjectStore) -> None:
    await objects.upload_bytes("jobs/p/file.txt", b"presigned body", "text/plain")
    url = await objects.presigned_url("jobs/p/file.txt", timedelta(minutes=5))
    async with aiohttp.ClientSession() as session, session.get(url) as response:
        assert response.status == 200
        assert await response.read() == b"presigned body"
