"""Address space and names that only exist inside organisations: what the egress gate never lets out and what
a responder never watches as if it came from outside."""

from __future__ import annotations

import ipaddress

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
