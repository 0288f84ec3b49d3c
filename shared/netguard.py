"""Server-side request forgery guard: outbound HTTP (tool downloads, job notifications, a
user's own S3 endpoint) may reach only globally routable addresses unless an operator allows
more. Checked on every resolved address at connect time (an aiohttp resolver, or urllib3
connections for the S3 client), so a name that resolves to a public address when first
checked and to a private one later (DNS rebinding) is still refused; and on every
redirect."""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable
from typing import Any

from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import DefaultResolver
from urllib3 import PoolManager
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import ConnectTimeoutError, NameResolutionError, NewConnectionError
from yarl import URL

from shared.errors import PermanentError


class BlockedDestinationError(PermanentError):
    """The URL points somewhere Conveyor may not send requests."""


class ForbiddenAddressError(OSError):
    """Raised inside the connector, so aiohttp wraps it; callers look for this cause."""


# Not globally routable, from IANA's IPv4 and IPv6 special-purpose address registries (the
# standard library's lists change between Python releases and missed 100.64.0.0/10 and
# 2002::/16). Whole blocks are refused even where a registry marks a few addresses global.
_IPV4_NOT_GLOBAL = tuple(ipaddress.IPv4Network(block) for block in (
    "0.0.0.0/8", "10.0.0.0/8", "100.64.0.0/10", "127.0.0.0/8", "169.254.0.0/16",
    "172.16.0.0/12", "192.0.0.0/24", "192.0.2.0/24", "192.88.99.0/24", "192.168.0.0/16",
    "198.18.0.0/15", "198.51.100.0/24", "203.0.113.0/24", "224.0.0.0/4", "240.0.0.0/4",
))
# IPv6 unicast on the internet is 2000::/3, less these blocks inside it: IETF protocol
# assignments (Teredo, 2001::/32, among them), documentation, 6to4 (2002::/16, which tunnels
# to any IPv4 address, private ones included).
_IPV6_GLOBAL = ipaddress.IPv6Network("2000::/3")
_IPV6_NOT_GLOBAL = tuple(ipaddress.IPv6Network(block) for block in (
    "2001::/23", "2001:db8::/32", "2002::/16", "3fff::/20",
))
# NAT64's well-known prefix reaches the IPv4 address in its last 32 bits.
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")


def forbidden_address(address: str) -> bool:
    """Whether `address` is anything but a globally routable unicast address: loopback,
    private, shared (100.64.0.0/10), link-local, unspecified, multicast, reserved,
    documentation, or an IPv6 form that leads to such an IPv4 address (IPv4-mapped, NAT64)
    or through a tunnel to any address (6to4, Teredo). Unparseable: forbidden too."""
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return True
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped
        elif ip in _NAT64:
            ip = ipaddress.IPv4Address(ip.packed[12:])
        else:
            return ip not in _IPV6_GLOBAL or any(ip in block for block in _IPV6_NOT_GLOBAL)
    return any(ip in block for block in _IPV4_NOT_GLOBAL) or not ip.is_global


def refusal(name: str) -> str:
    """Why a destination is refused, and what allows it."""
    return (f"refusing {name}: not a globally routable address (private, loopback, "
            "link-local, shared, reserved or multicast; "
            "CONVEYOR_ALLOW_PRIVATE_NETWORKS=true allows it)")


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
        raise BlockedDestinationError(refusal(host))


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
            raise ForbiddenAddressError(refusal(host))
        return allowed

    async def close(self) -> None:
        await self._inner.close()


def _connect_checked(connection: HTTPConnection, connect: Callable[[], socket.socket]
                     ) -> socket.socket:
    """Resolve the connection's host, refuse it if any address is forbidden, and connect
    (with urllib3's own `connect`, error handling included) to the addresses checked."""
    name = connection._dns_host
    try:
        found = socket.getaddrinfo(name, connection.port, type=socket.SOCK_STREAM)
    except socket.gaierror as error:
        # Never `connect()` here: it would resolve the name again, unchecked.
        raise NameResolutionError(connection.host, connection, error) from error
    addresses = list(dict.fromkeys(str(info[4][0]) for info in found))
    if any(forbidden_address(address) for address in addresses):
        raise BlockedDestinationError(refusal(name))
    failure: NewConnectionError | ConnectTimeoutError | None = None
    for address in addresses:
        connection._dns_host = address
        try:
            return connect()
        except (NewConnectionError, ConnectTimeoutError) as error:
            failure = error
        finally:
            connection._dns_host = name
    assert failure is not None  # getaddrinfo answers at least one address or raises
    raise failure


class GuardedHTTPConnection(HTTPConnection):
    def _new_conn(self) -> socket.socket:
        return _connect_checked(self, super()._new_conn)


class GuardedHTTPSConnection(HTTPSConnection):
    def _new_conn(self) -> socket.socket:
        return _connect_checked(self, super()._new_conn)


class GuardedHTTPConnectionPool(HTTPConnectionPool):
    ConnectionCls = GuardedHTTPConnection


class GuardedHTTPSConnectionPool(HTTPSConnectionPool):
    ConnectionCls = GuardedHTTPSConnection


def guarded_pool_manager(allow_private: bool, **options: Any) -> PoolManager:
    """A urllib3 pool manager (for a Minio client) whose every new connection is checked like
    `GuardedResolver` checks aiohttp's. TLS still verifies the certificate for the name: only
    the TCP connection goes to the checked address. BlockedDestinationError is not an OSError,
    so urllib3 does not retry it and it reaches the caller as itself."""
    manager = PoolManager(**options)
    if not allow_private:
        manager.pool_classes_by_scheme = {"http": GuardedHTTPConnectionPool,
                                          "https": GuardedHTTPSConnectionPool}
    return manager
