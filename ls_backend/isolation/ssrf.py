"""SSRF protection on, with the ML backend's own address allowed and nothing else private.

Label Studio fetches URLs for its users: a task import from a URL (any project member), the
webhooks and the ML backend (the manager's). With ``SSRF_PROTECTION_ENABLED`` and
``ML_BLOCK_LOCAL_IP`` it refuses every private, loopback and reserved address, the ML backend's
too; Label Studio 1.23.2 has no allow-list, only the banned subnets. So the defaults are
listed here (copied from ``core.utils.io.validate_ip`` of Label Studio 1.23.2) and each allowed
address is cut out of them: an annotator's URL import of a loopback service is still refused,
the ML backend (``XNAMING_ALLOWED_ADDRESSES``, comma-separated IP addresses) is reached.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

ALLOWED_ADDRESSES_ENV = "XNAMING_ALLOWED_ADDRESSES"
"""Environment variable of the server: the IP addresses Label Studio may call (the ML backend)."""

DEFAULT_BANNED_SUBNETS = (
    "0.0.0.0/8",
    "10.0.0.0/8",
    "100.64.0.0/10",
    "127.0.0.0/8",
    "169.254.0.0/16",
    "172.16.0.0/12",
    "192.0.0.0/24",
    "192.0.2.0/24",
    "192.88.99.0/24",
    "192.168.0.0/16",
    "198.18.0.0/15",
    "198.51.100.0/24",
    "203.0.113.0/24",
    "224.0.0.0/4",
    "233.252.0.0/24",
    "240.0.0.0/4",
    "255.255.255.255/32",
    "::/128",
    "::1/128",
    "::ffff:0:0/96",
    "::ffff:0:0:0/96",
    "64:ff9b::/96",
    "64:ff9b:1::/48",
    "100::/64",
    "2001:0000::/32",
    "2001:20::/28",
    "2001:db8::/32",
    "2002::/16",
    "fc00::/7",
    "fe80::/10",
    "ff00::/8",
)
"""Label Studio 1.23.2's banned subnets (``USE_DEFAULT_BANNED_SUBNETS``)."""


def allowed_addresses(value: str) -> list[str]:
    """The IP addresses of ``XNAMING_ALLOWED_ADDRESSES`` (comma-separated); ValueError names a
    value that is not one (a host name cannot be allowed: it may resolve anywhere)."""
    found = []
    for item in (part.strip() for part in value.split(",")):
        if not item:
            continue
        try:
            found.append(str(ipaddress.ip_address(item)))
        except ValueError:
            raise ValueError(
                f"{ALLOWED_ADDRESSES_ENV}: {item!r} is not an IP address (give the ML backend's "
                "address, e.g. 127.0.0.2)"
            ) from None
    return found


def banned_subnets(allowed: Iterable[str]) -> list[str]:
    """Label Studio's default banned subnets with each ``allowed`` address cut out.

    Parameters
    ----------
    allowed
        IP addresses Label Studio may call.

    Returns
    -------
    list of str
        Subnets (CIDR) that together ban what the defaults ban, except ``allowed``.
    """
    subnets = [ipaddress.ip_network(subnet) for subnet in DEFAULT_BANNED_SUBNETS]
    for address in allowed:
        hole = ipaddress.ip_network(address)
        kept = []
        for subnet in subnets:
            if subnet.version == hole.version and subnet.supernet_of(hole):
                kept.extend(subnet.address_exclude(hole))
            else:
                kept.append(subnet)
        subnets = kept
    return [str(subnet) for subnet in subnets]
