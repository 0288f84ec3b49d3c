"""`storage:get` brings a file into the job workspace; `storage:put` sends workspace files
to an s3:// destination (by default the platform's output area for the job)."""

from __future__ import annotations

import asyncio
import posixpath
import re
from pathlib import Path
from urllib.parse import unquote

import aiohttp
from yarl import URL

from services.worker.context import ToolContext, ToolError
from services.worker.tools.s3access import (
    S3Location,
    clear_leftovers,
    copy_object,
    list_keys,
    locate,
)
from shared.errors import TransientError
from shared.jobs import output_prefix
from shared.netguard import (
    BlockedDestinationError,
    ForbiddenAddressError,
    GuardedResolver,
    check_url,
)
from shared.params import Credentials, split_s3_url
from shared.toolspecs import StorageGet, StoragePut, check_workspace_path

MAX_REDIRECTS = 5
CHUNK = 1024 * 1024
# Readable by every job, written only by `conveyor dev` and operators: a job that could
# write here would change what every organization's jobs read.
SHARED_PREFIXES = ("samples/",)


def platform_key_allowed(key: str, own: tuple[str, ...], *, write: bool) -> bool:
    """Without credentials a task reaches only its own job's areas (`own`) of the platform
    bucket (and reads the shared samples), never another tenant's files. A key with `.`,
    `..` or empty segments is refused outright: a server or proxy that normalizes the path
    would otherwise take `jobs/<own>/../../samples/x` out of the areas checked."""
    segments = key.split("/")
    if any(part in {".", ".."} for part in segments) or "" in segments[:-1]:
        return False
    return key.startswith(own if write else own + SHARED_PREFIXES)


def _check_platform_key(context: ToolContext, bucket: str, key: str, *, write: bool) -> None:
    """ToolError unless a task without credentials may read (or write) this key."""
    own = (context.workspace, output_prefix(context.job_id))
    if bucket == context.objects.bucket and platform_key_allowed(key, own, write=write):
        return
    verb = "write" if write else "read"
    if bucket == context.objects.bucket and write and key.startswith(SHARED_PREFIXES):
        raise ToolError(f"refusing to write s3://{bucket}/{key}: {SHARED_PREFIXES[0]} of the "
                        "platform's storage is shared by every organization and read-only")
    raise ToolError(f"refusing to {verb} s3://{bucket}/{key}: it is outside this job's areas "
                    "of the platform's storage; give credentials to reach other buckets")


async def _platform_or_credentials(
    context: ToolContext, bucket: str, key: str, credentials: Credentials | None,
    *, write: bool,
) -> S3Location:
    location = await locate(context, bucket, credentials)
    if location.client is context.objects.client or _platform_bucket(context, bucket,
                                                                      credentials):
        _check_platform_key(context, bucket, key, write=write)
    return location


def _platform_bucket(context: ToolContext, bucket: str, credentials: Credentials | None
                     ) -> bool:
    """Whether a location with credentials is still the platform's own bucket: its areas
    then hold whatever keys are given (a stand-in such as moto accepts any keys at all)."""
    endpoint = credentials.endpoint if credentials else None
    return bucket == context.objects.bucket and (
        not endpoint or endpoint.rstrip("/") == context.settings.s3_endpoint.rstrip("/"))


def default_name(source: str) -> str:
    path = split_s3_url(source)[1] if source.startswith("s3://") else URL(source).path
    name = unquote(posixpath.basename(path.rstrip("/")))
    return name if name not in {"", ".", ".."} else "download"


def workspace_name(parameters: StorageGet) -> str:
    """Where `storage:get` puts its file: `destination`, else the source's file name, which
    (decoded from the URL) must make a valid workspace path too."""
    if parameters.destination is not None:
        return parameters.destination
    name = default_name(parameters.source)
    try:
        return check_workspace_path(name)
    except ValueError as exc:
        raise ToolError(f"parameters.source: its file name {name!r} {exc}; give a "
                        "destination") from None


async def storage_get(context: ToolContext, parameters: StorageGet) -> None:
    name = workspace_name(parameters)
    key = context.workspace + name
    shown = context.redact(parameters.source)
    await context.log(f"fetching {shown} into the workspace as {name}")
    platform = S3Location(context.objects.client, context.objects.bucket, True)
    if parameters.source.startswith("s3://"):
        bucket, source_key = split_s3_url(parameters.source)
        source = await _platform_or_credentials(
            context, bucket, source_key, parameters.credentials, write=False
        )
        await clear_leftovers(context, platform, key)
        size = await copy_object(source, source_key, platform, key)
    else:
        target = context.scratch / "download"
        size = await fetch_http(context, parameters.source, parameters.credentials, target)
        await clear_leftovers(context, platform, key)
        await context.objects.upload_file(key, target)
    context.add_output(key, size)
    context.count("bytes_in", size)
    await context.progress(100.0, force=True)
    await context.log(f"stored {name} ({size} bytes)")


async def fetch_http(
    context: ToolContext, url: str, credentials: Credentials | None, target: Path
) -> int:
    """Download `url` to `target`, following redirects only to allowed hosts."""
    allow = context.settings.allow_private_networks
    headers = {}
    auth = None
    if credentials is not None and credentials.token is not None:
        headers["Authorization"] = f"Bearer {credentials.token.get_secret_value()}"
    if credentials is not None and credentials.username is not None:
        password = credentials.password.get_secret_value() if credentials.password else ""
        auth = aiohttp.BasicAuth(credentials.username, password)
    timeout = aiohttp.ClientTimeout(total=None, sock_connect=15, sock_read=120)
    connector = aiohttp.TCPConnector(resolver=GuardedResolver(allow))
    current = URL(url)
    origin = current.origin()
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        for _ in range(MAX_REDIRECTS + 1):
            check_url(current, allow)
            # Credentials go only to the host the user named, not to wherever it redirects.
            same = current.origin() == origin
            try:
                async with session.get(
                    current, allow_redirects=False, headers=headers if same else None,
                    auth=auth if same else None,
                ) as response:
                    if response.status in {301, 302, 303, 307, 308}:
                        location = response.headers.get("Location")
                        if not location:
                            raise ToolError(f"{response.status} without a Location header")
                        current = current.join(URL(location))
                        continue
                    shown = context.redact(str(current))
                    if response.status >= 500 or response.status == 429:
                        raise TransientError(f"{shown} answered {response.status}")
                    if response.status >= 400:
                        raise ToolError(
                            f"{shown} answered {response.status} {response.reason or ''}".strip()
                        )
                    return await _save(context, response, target)
            except aiohttp.ClientConnectorError as exc:
                if isinstance(exc.os_error, ForbiddenAddressError):
                    raise BlockedDestinationError(str(exc.os_error)) from None
                raise TransientError(f"cannot connect to {current.host}: {exc.os_error}") from exc
            except (aiohttp.ClientPayloadError, aiohttp.ServerDisconnectedError,
                    TimeoutError) as exc:
                raise TransientError(f"download interrupted: {type(exc).__name__}") from exc
    raise ToolError(f"more than {MAX_REDIRECTS} redirects")


async def _save(context: ToolContext, response: aiohttp.ClientResponse, target: Path) -> int:
    total = response.content_length
    received = 0
    handle = await asyncio.to_thread(target.open, "wb")
    try:
        buffer = bytearray()
        async for chunk in response.content.iter_chunked(64 * 1024):
            buffer += chunk
            received += len(chunk)
            if len(buffer) >= CHUNK:
                await asyncio.to_thread(handle.write, bytes(buffer))
                buffer.clear()
            if total:
                await context.progress(99.0 * received / total)
        if buffer:
            await asyncio.to_thread(handle.write, bytes(buffer))
    finally:
        await asyncio.to_thread(handle.close)
    if total is not None and received != total:
        raise TransientError(f"download ended after {received} of {total} bytes")
    return received


def glob_to_regex(pattern: str) -> re.Pattern[str]:
    """`*` and `?` stay within a folder; `**` matches across folders (also none)."""
    out = []
    index = 0
    while index < len(pattern):
        if pattern.startswith("**/", index):
            out.append("(?:.*/)?")
            index += 3
        elif pattern.startswith("**", index):
            out.append(".*")
            index += 2
        elif pattern[index] == "*":
            out.append("[^/]*")
            index += 1
        elif pattern[index] == "?":
            out.append("[^/]")
            index += 1
        else:
            out.append(re.escape(pattern[index]))
            index += 1
    return re.compile("".join(out) + r"\Z")


async def storage_put(context: ToolContext, parameters: StoragePut) -> None:
    workspace = S3Location(context.objects.client, context.objects.bucket, True)
    matcher = glob_to_regex(parameters.source)
    names = [
        key[len(context.workspace):]
        for key in await list_keys(workspace, context.workspace)
    ]
    matches = sorted(name for name in names if matcher.match(name))
    if not matches:
        raise ToolError(f"no file in the job workspace matches {parameters.source!r}")
    destination = parameters.destination or (
        f"s3://{context.objects.bucket}/{output_prefix(context.job_id)}"
    )
    bucket, prefix = split_s3_url(destination)
    single_key = len(matches) == 1 and bool(prefix) and not prefix.endswith("/")
    target = (
        workspace if parameters.destination is None
        else await _platform_or_credentials(context, bucket, prefix, parameters.credentials,
                                            write=True)
    )
    for done, name in enumerate(matches, start=1):
        key = prefix if single_key else f"{prefix}{name}"
        if target.client is context.objects.client:
            _check_platform_key(context, bucket, key, write=True)
        await clear_leftovers(context, target, key)
        size = await copy_object(workspace, context.workspace + name, target, key)
        context.add_output(key, size, None if target.platform else bucket)
        context.count("bytes_out", size)
        await context.log(f"stored {name} at s3://{bucket}/{key} ({size} bytes)")
        await context.progress(100.0 * done / len(matches), force=done == len(matches))
