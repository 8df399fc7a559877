"""Address space and names that only exist inside organisations: what the egress gate never lets out and what
a responder never watches as if it came from outside."""

from __future__ import annotations

import ipaddress
from collections.abc import Collection, Iterable

Network = ipaddress.IPv4Network | ipaddress.IPv6Network

#: RFC 1918, RFC 6598 (carrier-grade NAT), loopback, link-local, "this network", IPv6 ULA, link-local, loopback
INTERNAL_NETWORKS: tuple[Network, ...] = tuple(
    ipaddress.ip_network(n) for n in (
        "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10", "127.0.0.0/8", "169.254.0.0/16",
        "0.0.0.0/8", "fc00::/7", "fe80::/10", "::1/128",
    )
)
#: top-level names that only exist inside organisations
INTERNAL_SUFFIXES: frozenset[str] = frozenset(
    {"local", "lan", "internal", "intranet", "corp", "home.arpa", "localdomain"})


def add_declared(texts: Iterable[str], addresses: set[str], networks: list[Network]) -> None:
    """An asset's declared addresses, sorted: a single address into `addresses`, a range into `networks` (text
    that is neither is skipped: inventory validation reports it)."""
    for text in texts:
        try:
            net = ipaddress.ip_network(text, strict=False)
        except ValueError:
            continue
        if net.num_addresses == 1:
            addresses.add(str(net.network_address))
        else:
            networks.append(net)


def is_internal_address(text: str, networks: Iterable[Network] = (), addresses: Collection[str] = ()) -> bool:
    """Whether `text` is an address in the internal ranges, in one of `networks`, or one of `addresses`
    (an IPv6 zone is ignored, an IPv4-mapped IPv6 address is read as the IPv4 one)."""
    try:
        ip = ipaddress.ip_address(text.split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped:
        ip = ip.ipv4_mapped
    return any(ip in net for net in INTERNAL_NETWORKS) or any(ip in net for net in networks) \
        or text in addresses or str(ip) in addresses
