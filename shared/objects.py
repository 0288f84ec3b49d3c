"""S3 (MinIO in deployment) through the minio client. The client blocks, so every call runs
in a thread; transfers stream in parts, so memory stays bounded whatever the object's size."""

from __future__ import annotations

import asyncio
import io
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit

import structlog
import urllib3
from minio import Minio
from minio.error import MinioException, S3Error

from shared.errors import DependencyError
from shared.periodic import Periodic
from shared.settings import Settings

log = structlog.get_logger(__name__)

# An upload holds about two copies of each part in flight in memory. Part size 0 lets minio
# pick the smallest that fits S3's 10,000-part limit: 5 MiB up to ~50 GB objects, so memory
# stays near 20 MiB for any object below that and grows only as size / 5,000 above it.
PART_SIZE = 0
PARALLEL_PARTS = 2
CHUNK_SIZE = 1024 * 1024
# What minio, its HTTP pool and the network raise when S3 is away or refuses.
S3_FAILURES: tuple[type[Exception], ...] = (MinioException, urllib3.exceptions.HTTPError,
                                            OSError)
# Stale uploads are counted in hours (CONVEYOR_STALE_UPLOAD_HOURS): an hourly sweep is enough.
UPLOAD_SWEEP_INTERVAL = 3600.0


@dataclass(frozen=True)
class IncompleteUpload:
    """A multipart upload begun and neither completed nor aborted: its parts take space
    (and cost) until someone aborts it, e.g. after its uploader was killed."""

    key: str
    upload_id: str
    initiated: datetime | None


class ObjectStore:
    """`client` does the work; `signer` (by default `client`) signs the URLs given to
    clients: a client of the address they reach S3 at, which may not be ours (signature v4
    covers the host, so a URL signed for one address cannot be rewritten to another)."""

    def __init__(self, client: Minio, bucket: str, signer: Minio | None = None) -> None:
        self.client = client
        self.bucket = bucket
        self.signer = signer or client

    async def ensure_bucket(self) -> None:
        def ensure() -> None:
            if not self.client.bucket_exists(self.bucket):
                self.client.make_bucket(self.bucket)

        await asyncio.to_thread(ensure)

    async def ping(self) -> None:
        try:
            exists = await asyncio.to_thread(self.client.bucket_exists, self.bucket)
        except S3_FAILURES as exc:
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

    def _incomplete_uploads(self, prefix: str) -> list[IncompleteUpload]:
        """Every incomplete upload under `prefix` (blocking). The minio client has no public
        call for it, so its own private one is used; S3 pages by the last key and upload id
        of a page, which is what its Next* markers say."""
        found: list[IncompleteUpload] = []
        key_marker: str | None = None
        upload_marker: str | None = None
        while True:
            page = self.client._list_multipart_uploads(
                self.bucket, prefix=prefix or None, key_marker=key_marker,
                upload_id_marker=upload_marker)
            found.extend(IncompleteUpload(upload.object_name, upload.upload_id,
                                          upload.initiated_time)
                         for upload in page.uploads
                         if upload.object_name and upload.upload_id)
            if not page.is_truncated or not page.uploads:
                return found
            key_marker, upload_marker = page.uploads[-1].object_name, page.uploads[-1].upload_id

    async def incomplete_uploads(self, prefix: str = "") -> list[IncompleteUpload]:
        return await asyncio.to_thread(self._incomplete_uploads, prefix)

    async def _abort_where(self, prefix: str, doomed: Callable[[IncompleteUpload], bool]
                           ) -> list[IncompleteUpload]:
        def abort() -> list[IncompleteUpload]:
            aborted = []
            for upload in self._incomplete_uploads(prefix):
                if not doomed(upload):
                    continue
                try:
                    self.client._abort_multipart_upload(self.bucket, upload.key,
                                                        upload.upload_id)
                except S3Error as exc:
                    if exc.code != "NoSuchUpload":  # else someone else aborted it first
                        raise
                aborted.append(upload)
            return aborted

        return await asyncio.to_thread(abort)

    async def abort_uploads_of(self, key: str) -> list[IncompleteUpload]:
        """Abort every incomplete upload of exactly `key`: what an earlier attempt to write
        it left behind (a worker killed mid-upload). Returns those aborted."""
        return await self._abort_where(key, lambda upload: upload.key == key)

    async def abort_stale_uploads(self, older_than: timedelta) -> list[IncompleteUpload]:
        """Abort the bucket's incomplete uploads begun more than `older_than` ago (an upload
        still running is younger than that). Returns those aborted. An upload the server
        gives no start time for counts as stale."""
        cutoff = datetime.now(UTC) - older_than
        return await self._abort_where(
            "", lambda upload: upload.initiated is None or upload.initiated <= cutoff)

    async def presigned_put_url(self, key: str, expires: timedelta = timedelta(hours=1)) -> str:
        return await asyncio.to_thread(
            self.signer.presigned_put_object, self.bucket, key, expires=expires
        )

    async def presigned_url(self, key: str, expires: timedelta = timedelta(hours=1)) -> str:
        return await asyncio.to_thread(
            self.signer.presigned_get_object, self.bucket, key, expires=expires
        )


async def sweep_stale_uploads(store: ObjectStore, settings: Settings) -> int:
    """Abort the platform bucket's incomplete uploads older than
    `CONVEYOR_STALE_UPLOAD_HOURS`: those of workers killed mid-upload that no retry cleaned
    up. Meant for a worker's start and then every hour or so; any worker may run it."""
    aborted = await store.abort_stale_uploads(timedelta(hours=settings.stale_upload_hours))
    if aborted:
        log.info("aborted stale multipart uploads", count=len(aborted),
                 keys=sorted({upload.key for upload in aborted})[:20])
    return len(aborted)


def upload_sweeper(store: ObjectStore, settings: Settings,
                   interval: float = UPLOAD_SWEEP_INTERVAL) -> Periodic:
    """The sweep, now and then every `interval` seconds, for a worker to own from its start
    to its shutdown (any worker may run it)."""
    return Periodic("sweeping stale multipart uploads",
                    lambda: sweep_stale_uploads(store, settings), interval, at_start=True,
                    expected=S3_FAILURES)


def make_client(settings: Settings, http: urllib3.PoolManager, endpoint: str = "") -> Minio:
    """A client of `endpoint` (default: CONVEYOR_S3_ENDPOINT). The region is always given,
    so presigning is offline: minio would otherwise ask the endpoint for the bucket's
    region, and a public endpoint may not be reachable from where the service runs."""
    address = urlsplit(endpoint or settings.s3_endpoint)
    return Minio(
        address.netloc,
        access_key=settings.s3_access_key.get_secret_value(),
        secret_key=settings.s3_secret_key.get_secret_value(),
        secure=address.scheme == "https",
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
    client = make_client(settings, http)
    signer = (make_client(settings, http, settings.s3_public_endpoint)
              if settings.s3_client_endpoint != settings.s3_endpoint else client)
    store = ObjectStore(client, settings.s3_bucket, signer)
    try:
        await store.ensure_bucket()
    except S3_FAILURES as exc:
        raise DependencyError(f"S3 at {settings.s3_endpoint} did not answer: {exc}") from exc
    try:
        yield store
    finally:
        http.clear()
