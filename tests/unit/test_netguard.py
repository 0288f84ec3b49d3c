"""The SSRF guard's decision on the addresses themselves: only globally routable unicast
addresses pass (no test here sends traffic anywhere)."""

import pytest
from yarl import URL

from shared.netguard import (
    BlockedDestinationError,
    ForbiddenAddressError,
    GuardedResolver,
    check_url,
    forbidden_address,
)

REFUSED = [
    "0.0.0.0", "0.1.2.3", "10.0.0.1", "100.64.0.1", "100.100.100.200", "100.127.255.254",
    "127.0.0.1", "127.255.255.254", "169.254.169.254", "172.16.0.1", "172.31.255.255",
    "192.0.0.1", "192.0.2.10", "192.88.99.1", "192.168.1.1", "198.18.0.1", "198.19.255.1",
    "198.51.100.7", "203.0.113.9", "224.0.0.1", "239.255.255.250", "240.0.0.1",
    "255.255.255.255",
    # IPv6 proper
    "::", "::1", "fe80::1", "fe80::1%eth0", "fc00::1", "fd12:3456::1", "fec0::1", "ff02::1",
    "ff0e::1", "100::1", "2001:db8::1", "3fff::1", "::10.0.0.1", "5f00::1",
    # IPv6 forms of a private IPv4 address
    "::ffff:127.0.0.1", "::ffff:10.0.0.1", "::ffff:100.100.100.200", "::ffff:169.254.169.254",
    "64:ff9b::a9fe:a9fe", "64:ff9b::7f00:1", "64:ff9b::10.1.2.3", "64:ff9b:1::1",
    # tunnels that can end anywhere: 6to4 and Teredo
    "2002::1", "2002:7f00:1::1", "2002:c0a8:101::1", "2001:0:4136:e378:8000:63bf:3fff:fdd2",
    "2001::1",
    # not an address at all
    "not-an-address", "",
]
ALLOWED = [
    "8.8.8.8", "1.1.1.1", "93.184.216.34", "100.63.255.255", "100.128.0.1", "172.32.0.1",
    "2606:4700::1111", "2a00:1450:4001:80b::200e", "::ffff:8.8.8.8", "64:ff9b::808:808",
]


@pytest.mark.parametrize("address", REFUSED)
def test_not_globally_routable_addresses_are_refused(address: str) -> None:
    assert forbidden_address(address) is True


@pytest.mark.parametrize("address", ALLOWED)
def test_global_unicast_addresses_pass(address: str) -> None:
    assert forbidden_address(address) is False


@pytest.mark.parametrize("host", ["100.100.100.200", "[2002:7f00:1::1]", "[::ffff:10.0.0.1]",
                                  "[64:ff9b::a9fe:a9fe]", "0.0.0.0"])
def test_literal_hosts_in_urls_are_refused(host: str) -> None:
    with pytest.raises(BlockedDestinationError, match="not a globally routable address"):
        check_url(URL(f"http://{host}/latest/meta-data"), allow_private=False)


@pytest.mark.parametrize("host", ["localhost", "2130706433", "0x7f.1", "127.1"])
async def test_names_and_odd_spellings_of_loopback_are_refused_on_resolution(host: str) -> None:
    resolver = GuardedResolver(allow_private=False)
    try:
        with pytest.raises(ForbiddenAddressError, match=f"refusing {host}"):
            await resolver.resolve(host, 80)
    finally:
        await resolver.close()
