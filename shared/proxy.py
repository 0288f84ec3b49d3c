"""Passing an HTTP request on to another service, byte for byte, and its answer back: the
one port of `conveyor dev`, and the gateway's routes that the logger serves."""

from __future__ import annotations

import aiohttp
from aiohttp import web
from multidict import CIMultiDict, CIMultiDictProxy
from yarl import URL

from shared.xmlforms import respond

HOP_BY_HOP = frozenset({
    "connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailer",
    "transfer-encoding", "upgrade", "host", "content-length",
})


def forwardable(headers: CIMultiDictProxy[str]) -> CIMultiDict[str]:
    return CIMultiDict((k, v) for k, v in headers.items() if k.lower() not in HOP_BY_HOP)


async def forward(
    session: aiohttp.ClientSession, request: web.Request, base: str, raw_path_qs: str
) -> web.StreamResponse:
    """Send `request` to `base` + `raw_path_qs` (path and query stay encoded as sent) and
    stream the answer back; 502 when the service does not answer."""
    headers = forwardable(request.headers)
    headers.setdefault("X-Forwarded-Host", request.host)
    headers.setdefault("X-Forwarded-Proto", request.scheme)
    if request.remote:
        headers["X-Forwarded-For"] = request.remote
    try:
        async with session.request(
            request.method, URL(f"{base}{raw_path_qs}", encoded=True), headers=headers,
            data=request.content if request.body_exists else None, allow_redirects=False,
        ) as upstream:
            response = web.StreamResponse(
                status=upstream.status, reason=upstream.reason,
                headers=forwardable(upstream.headers),
            )
            # A known length is passed on (bytes pass through as they are): the client sees
            # it, and a HEAD answers the length its GET has, not a chunked nothing.
            if upstream.content_length is not None and "Transfer-Encoding" not in upstream.headers:
                response.content_length = upstream.content_length
            await response.prepare(request)
            async for chunk in upstream.content.iter_any():
                await response.write(chunk)
            await response.write_eof()
            return response
    except (aiohttp.ClientConnectionError, TimeoutError):
        return respond(request, {"error": f"the service at {base} does not answer",
                                 "status": 502}, "error", status=502)


def client_session() -> aiohttp.ClientSession:
    """A session fit for forwarding: no overall timeout (answers may stream for long), no
    decompression (bytes pass through as they are)."""
    return aiohttp.ClientSession(
        timeout=aiohttp.ClientTimeout(total=None, connect=5), auto_decompress=False
    )
