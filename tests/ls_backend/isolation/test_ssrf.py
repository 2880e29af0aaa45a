"""The banned subnets Label Studio runs with: the defaults, less the ML backend's address."""

from __future__ import annotations

import ipaddress

import pytest

from ls_backend.isolation.ssrf import DEFAULT_BANNED_SUBNETS, allowed_addresses, banned_subnets


def _banned(subnets: list[str], address: str) -> bool:
    ip = ipaddress.ip_address(address)
    return any(ip in ipaddress.ip_network(subnet) for subnet in subnets)


@pytest.mark.parametrize("allowed", ["127.0.0.2", "172.28.0.10", "10.1.2.3"])
def test_only_the_allowed_address_is_cut_out(allowed) -> None:
    subnets = banned_subnets([allowed])
    assert not _banned(subnets, allowed)
    neighbours = ipaddress.ip_address(allowed) - 1, ipaddress.ip_address(allowed) + 1
    for address in (*map(str, neighbours), "127.0.0.1", "::1", "192.168.1.1", "169.254.169.254"):
        assert _banned(subnets, address), address
    assert not _banned(subnets, "93.184.216.34")  # a public address stays reachable


def test_nothing_allowed_bans_what_label_studio_bans() -> None:
    as_networks = [ipaddress.ip_network(subnet) for subnet in DEFAULT_BANNED_SUBNETS]
    assert [ipaddress.ip_network(subnet) for subnet in banned_subnets([])] == as_networks


def test_allowed_addresses_are_ip_addresses() -> None:
    assert allowed_addresses(" 127.0.0.2, ,172.28.0.10") == ["127.0.0.2", "172.28.0.10"]
    with pytest.raises(ValueError, match="'backend' is not an IP address"):
        allowed_addresses("backend")
