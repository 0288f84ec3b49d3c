"""S3 (MinIO in deployment) through the minio client. The client blocks, so every call runs
in a thread; transfers stream in parts, so memory stays bounded whatever the object's size."""

from __future__ import annotations

import asyncio
import io
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from pathlib import Path

import urllib3
from minio import Minio
from minio.error import MinioException, S3Error

from shared.errors import DependencyError
from shared.settings import Settings

# An upload holds about two copies of each part in flight in memory. Part size 0 lets minio
# pick the smallest that fits S3's 10,000-part limit: 5 MiB up to ~50 GB objects, so memory
# stays near 20 MiB for any object below that and grows only as size / 5,000 above it.
PART_SIZE = 0
PARALLEL_PARTS = 2
CHUNK_SIZE = 1024 * 1024


class ObjectStore:
    def __init__(self, client: Minio, bucket: str) -> None:
        self.client = client
        self.bucket = bucket

    async def ensure_bucket(self) -> None:
        def ensure() -> None:
            if not self.client.bucket_exists(self.bucket):
                self.client.make_bucket(self.bucket)

        await asyncio.to_thread(ensure)

    async def ping(self) -> None:
        try:
            exists = await asyncio.to_thread(self.client.bucket_exists, self.bucket)
        except (MinioException, urllib3.exceptions.HTTPError, OSError) as exc:
            raise DependencyError(f"S3 did not answer: {exc}") from exc
        if not exists:
            raise DependencyError(f"S3 bucket {self.bucket!r} does not exist")

    async def upload_file(
        self, key: str, path: Path, content_type: str = "application/octet-stream"
    ) -> int:
        """Stream a local file up in parts; returns its size."""
        def upload() -> int:
            self.client.fput_object(
                self.bucket, key, str(path), content_type=content_type,
                part_size=PART_SIZE, num_parallel_uploads=PARALLEL_PARTS,
            )
            return path.stat().st_size

        return await asyncio.to_thread(upload)

    async def download_file(self, key: str, path: Path) -> int:
        """Stream an object down to a local file; returns its size."""
        def download() -> int:
            self.client.fget_object(self.bucket, key, str(path))
            return path.stat().st_size

        return await asyncio.to_thread(download)

    async def upload_bytes(
        self, key: str, data: bytes, content_type: str = "application/octet-stream"
    ) -> None:
        await asyncio.to_thread(
            self.client.put_object, self.bucket, key, io.BytesIO(data), len(data),
            content_type=content_type,
        )

    async def iter_object(self, key: str, chunk_size: int = CHUNK_SIZE) -> AsyncIterator[bytes]:
        """Yield an object's bytes chunk by chunk."""
        response = await asyncio.to_thread(self.client.get_object, self.bucket, key)
        try:
            while chunk := await asyncio.to_thread(response.read, chunk_size):
                yield chunk
        finally:
            response.close()
            response.release_conn()

    async def exists(self, key: str) -> bool:
        """Whether an object of exactly this key is there."""
        try:
            await self.size(key)
        except S3Error as exc:
            if exc.code in {"NoSuchKey", "NoSuchObject"}:
                return False
            raise
        return True

    async def size(self, key: str) -> int:
        stat = await asyncio.to_thread(self.client.stat_object, self.bucket, key)
        return int(stat.size or 0)

    async def list_keys(self, prefix: str) -> list[str]:
        def keys() -> list[str]:
            return [
                obj.object_name
                for obj in self.client.list_objects(self.bucket, prefix=prefix, recursive=True)
                if obj.object_name is not None
            ]

        return await asyncio.to_thread(keys)

    async def list_sizes(self, prefix: str) -> list[tuple[str, int]]:
        """(key, size) of each object under `prefix`, in key order."""
        def sizes() -> list[tuple[str, int]]:
            return [
                (obj.object_name, int(obj.size or 0))
                for obj in self.client.list_objects(self.bucket, prefix=prefix, recursive=True)
                if obj.object_name is not None
            ]

        return await asyncio.to_thread(sizes)

    async def read_bytes(self, key: str) -> bytes | None:
        """A small object's bytes, or None when there is no such object."""
        def read() -> bytes | None:
            try:
                response = self.client.get_object(self.bucket, key)
            except S3Error as exc:
                if exc.code == "NoSuchKey":
                    return None
                raise
            try:
                return bytes(response.read())
            finally:
                response.close()
                response.release_conn()

        return await asyncio.to_thread(read)

    async def delete(self, key: str) -> None:
        await asyncio.to_thread(self.client.remove_object, self.bucket, key)

    async def delete_prefix(self, prefix: str) -> int:
        """Delete every object under `prefix`; returns how many there were."""
        keys = await self.list_keys(prefix)
        for key in keys:
            await self.delete(key)
        return len(keys)

    async def presigned_put_url(self, key: str, expires: timedelta = timedelta(hours=1)) -> str:
        return await asyncio.to_thread(
            self.client.presigned_put_object, self.bucket, key, expires=expires
        )

    async def presigned_url(self, key: str, expires: timedelta = timedelta(hours=1)) -> str:
        return await asyncio.to_thread(
            self.client.presigned_get_object, self.bucket, key, expires=expires
        )


def make_client(settings: Settings, http: urllib3.PoolManager) -> Minio:
    return Minio(
        settings.s3_host,
        access_key=settings.s3_access_key.get_secret_value(),
        secret_key=settings.s3_secret_key.get_secret_value(),
        secure=settings.s3_secure,
        region=settings.s3_region,
        http_client=http,
    )


@asynccontextmanager
async def open_objects(settings: Settings) -> AsyncIterator[ObjectStore]:
    http = urllib3.PoolManager(
        timeout=urllib3.Timeout(connect=5, read=60),
        retries=urllib3.Retry(total=3, backoff_factor=0.2, status_forcelist=(500, 502, 503, 504)),
        maxsize=16,
    )
    store = ObjectStore(make_client(settings, http), settings.s3_bucket)
    try:
        await store.ensure_bucket()
    except (MinioException, urllib3.exceptions.HTTPError, OSError) as exc:
        raise DependencyError(f"S3 at {settings.s3_endpoint} did not answer: {exc}") from exc
    try:
        yield store
    finally:
        http.clear()
