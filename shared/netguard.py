"""Server-side request forgery guard: outbound HTTP (tool downloads, job notifications) may
not reach loopback,
private, link-local or otherwise reserved addresses unless an operator allows it. Checked on
every resolved address at connect time (a resolver wrapper) and on every redirect."""

from __future__ import annotations

import ipaddress
import socket

from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import DefaultResolver
from yarl import URL

from shared.errors import PermanentError


class BlockedDestinationError(PermanentError):
    """The URL points somewhere Conveyor may not send requests."""


class ForbiddenAddressError(OSError):
    """Raised inside the connector, so aiohttp wraps it; callers look for this cause."""


def forbidden_address(address: str) -> bool:
    ip = ipaddress.ip_address(address)
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return (ip.is_private or ip.is_loopback or ip.is_link_local or ip.is_multicast
            or ip.is_reserved or ip.is_unspecified)


def check_url(url: URL, allow_private: bool) -> None:
    """Refuse a URL whose host is a forbidden IP literal (names are checked on resolution)."""
    if url.scheme not in {"http", "https"}:
        raise BlockedDestinationError(f"refusing {url.scheme}:// (only http and https)")
    host = url.host or ""
    try:
        literal = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return
    if not allow_private and forbidden_address(str(literal)):
        raise BlockedDestinationError(
            f"refusing {host}: a private, loopback or link-local address "
            "(an operator can allow it with CONVEYOR_ALLOW_PRIVATE_NETWORKS=true)"
        )


class GuardedResolver(AbstractResolver):
    """Resolves like the default resolver, then drops forbidden addresses."""

    def __init__(self, allow_private: bool) -> None:
        self._inner = DefaultResolver()
        self._allow_private = allow_private

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        results = await self._inner.resolve(host, port, family)
        if self._allow_private:
            return results
        allowed = [r for r in results if not forbidden_address(r["host"])]
        if not allowed:
            raise ForbiddenAddressError(
                f"refusing {host}: it resolves only to private, loopback or link-local "
                "addresses (CONVEYOR_ALLOW_PRIVATE_NETWORKS=true allows them)"
            )
        return allowed

    async def close(self) -> None:
        await self._inner.close()
