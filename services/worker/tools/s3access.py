"""Reaching s3:// locations: the platform's own store, or another endpoint or account with
the task's credentials. Transfers run in a thread and stream (memory bounded by part size)."""

from __future__ import annotations

import asyncio
import socket
from dataclasses import dataclass
from typing import BinaryIO, cast
from urllib.parse import urlsplit

import urllib3
from minio import Minio
from minio.error import S3Error

from services.worker.context import ToolContext, ToolError
from shared.errors import PermanentError, TransientError
from shared.netguard import forbidden_address, guarded_pool_manager, refusal
from shared.objects import ObjectStore
from shared.params import Credentials

# S3 error codes that another attempt cannot fix.
PERMANENT_CODES = frozenset({
    "NoSuchKey", "NoSuchBucket", "AccessDenied", "InvalidAccessKeyId",
    "SignatureDoesNotMatch", "InvalidBucketName", "AllAccessDisabled", "InvalidObjectName",
})


@dataclass(frozen=True)
class S3Location:
    client: Minio
    bucket: str
    platform: bool

    def describe(self, key: str) -> str:
        return f"s3://{self.bucket}/{key}"

    @property
    def objects(self) -> ObjectStore:
        """The store's streaming transfers, on this location's client and bucket."""
        return ObjectStore(self.client, self.bucket)


def _check_endpoint(endpoint: str, allow_private: bool) -> None:
    host = urlsplit(endpoint).hostname or ""
    try:
        addresses = {info[4][0] for info in socket.getaddrinfo(host, None)}
    except OSError as exc:
        raise ToolError(f"cannot resolve S3 endpoint {endpoint}: {exc}") from exc
    if not allow_private and any(forbidden_address(str(a)) for a in addresses):
        raise ToolError(refusal(f"S3 endpoint {endpoint}"))


async def locate(context: ToolContext, bucket: str, credentials: Credentials | None) -> S3Location:
    """The client for `bucket`: the platform's, unless the task brings S3 credentials."""
    if credentials is None or credentials.access_key is None:
        return S3Location(context.objects.client, bucket, bucket == context.objects.bucket)
    return await locate_own(context, bucket, credentials)


async def locate_own(
    context: ToolContext, bucket: str, credentials: Credentials | None
) -> S3Location:
    """The client for a bucket of the user's: with the credentials given, or anonymous
    (never the platform's own keys) when there are none."""
    settings = context.settings
    endpoint = (credentials.endpoint if credentials else None) or settings.s3_endpoint
    # The platform's own endpoint is trusted (it is usually on a private network); one the
    # user names is not.
    guarded = credentials is not None and bool(credentials.endpoint)
    if guarded:
        await asyncio.to_thread(_check_endpoint, endpoint, settings.allow_private_networks)
    split = urlsplit(endpoint)
    secret = credentials.secret_key if credentials else None
    token = credentials.session_token if credentials else None
    client = Minio(
        split.netloc,
        access_key=credentials.access_key if credentials else None,
        secret_key=secret.get_secret_value() if secret else None,
        session_token=token.get_secret_value() if token else None,
        secure=split.scheme == "https",
        region=(credentials.region if credentials else None) or settings.s3_region,
        # Checked again on every connection: the name could resolve elsewhere by then.
        http_client=guarded_pool_manager(
            settings.allow_private_networks or not guarded,
            timeout=urllib3.Timeout(connect=10, read=120),
            # No redirects: a user's endpoint could send the request on to an address the
            # check above refuses.
            retries=urllib3.Retry(total=3, backoff_factor=0.5, redirect=False,
                                  status_forcelist=(500, 502, 503, 504)),
        ),
    )
    return S3Location(client, bucket, False)


def s3_failure(exc: Exception, what: str) -> Exception:
    """The error to raise for a failed S3 call: permanent for the user's mistakes,
    transient for the server's."""
    if isinstance(exc, PermanentError):
        return ToolError(f"{what}: {exc}")
    if isinstance(exc, S3Error):
        if exc.code in PERMANENT_CODES:
            return ToolError(f"{what}: {exc.code} ({exc.message})")
        return TransientError(f"{what}: {exc.code} ({exc.message})")
    return TransientError(f"{what}: {type(exc).__name__}: {exc}")


async def copy_object(source: S3Location, key: str, target: S3Location, target_key: str) -> int:
    """Stream one object from `source` to `target`; returns its size."""

    def copy() -> int:
        stat = source.client.stat_object(source.bucket, key)
        size = int(stat.size or 0)
        response = source.client.get_object(source.bucket, key)
        try:
            target.client.put_object(
                target.bucket, target_key, cast(BinaryIO, response), length=size,
                content_type=stat.content_type or "application/octet-stream",
            )
        finally:
            response.close()
            response.release_conn()
        return size

    try:
        return await asyncio.to_thread(copy)
    except (S3Error, urllib3.exceptions.HTTPError, OSError) as exc:
        raise s3_failure(
            exc, f"copying {source.describe(key)} to {target.describe(target_key)}"
        ) from exc


async def clear_leftovers(context: ToolContext, target: S3Location, key: str) -> None:
    """On a retry, abort the unfinished multipart uploads of `key` that an earlier attempt
    left (its worker was killed mid-upload): their parts would stay in the bucket for good.
    Best effort: a bucket whose keys may not list or abort uploads is left as it is."""
    if context.attempt <= 1:
        return
    try:
        aborted = await target.objects.abort_uploads_of(key)
    except (S3Error, urllib3.exceptions.HTTPError, OSError) as exc:
        await context.log(f"could not clear unfinished uploads of {target.describe(key)}: "
                          f"{type(exc).__name__}", level="warning")
        return
    if aborted:
        await context.log(f"aborted {len(aborted)} unfinished upload(s) of "
                          f"{target.describe(key)} left by an earlier attempt")


async def list_keys(location: S3Location, prefix: str) -> list[str]:
    def keys() -> list[str]:
        return [o.object_name for o in location.client.list_objects(
            location.bucket, prefix=prefix, recursive=True) if o.object_name]

    try:
        return await asyncio.to_thread(keys)
    except (S3Error, urllib3.exceptions.HTTPError, OSError) as exc:
        raise s3_failure(exc, f"listing {location.describe(prefix)}") from exc
