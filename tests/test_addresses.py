"""Address → asset resolution: exact hosts, networks, IPv6 forms, unknown addresses."""

from __future__ import annotations

import ipaddress
import random

from hypothesis import given
from hypothesis import strategies as st

from healthswarm.inventory import AddressIndex
from healthswarm.model import Asset


def asset(ident: str, *addresses: str) -> Asset:
    return Asset(id=ident, organisation="o", zone="z", kind="server", name=ident, addresses=addresses)


INDEX = AddressIndex([
    asset("pump", "10.0.0.5"),
    asset("ward", "10.0.4.0/24"),
    asset("ehr", "10.0.1.0/28", "2001:db8::10"),
    asset("v6net", "2001:db8:1::/64"),
])


def test_exact_hosts_and_networks() -> None:
    assert INDEX.lookup("10.0.0.5") == "pump"
    assert INDEX.lookup("10.0.4.0") == "ward" and INDEX.lookup("10.0.4.255") == "ward"
    assert INDEX.lookup("10.0.1.15") == "ehr" and INDEX.lookup("10.0.1.16") is None
    assert INDEX.lookup("10.0.0.6") is None and INDEX.lookup("8.8.8.8") is None


def test_ipv6_canonical_forms_and_mapped_ipv4() -> None:
    assert INDEX.lookup("2001:db8::10") == "ehr"
    assert INDEX.lookup("2001:0db8:0000:0000:0000:0000:0000:0010") == "ehr"
    assert INDEX.lookup("2001:db8:1::abcd") == "v6net"
    assert INDEX.lookup("::ffff:10.0.0.5") == "pump"
    assert INDEX.lookup("::ffff:10.0.4.7") == "ward"


def test_not_an_address() -> None:
    for text in ("", "pump", "10.0.0", "10.0.0.5/32", "999.1.1.1", "::g"):
        assert INDEX.lookup(text) is None


def test_agrees_with_a_linear_scan_on_random_networks() -> None:
    rng = random.Random(7)
    assets, nets = [], []
    base = int(ipaddress.IPv4Address("10.0.0.0"))
    for i in range(300):  # disjoint /28s and hosts, as the validator guarantees
        start = base + i * 64
        net = ipaddress.ip_network((start, 28)) if i % 3 else ipaddress.ip_network((start + 5, 32))
        nets.append((net, f"a{i}"))
        assets.append(asset(f"a{i}", str(net.network_address) if net.prefixlen == 32 else str(net)))
    index = AddressIndex(assets)
    for _ in range(3000):
        ip = ipaddress.IPv4Address(base + rng.randrange(300 * 64 + 100))
        expected = next((a for n, a in nets if ip in n), None)
        assert index.lookup(str(ip)) == expected


@given(st.text(max_size=60))
def test_never_raises(text: str) -> None:
    INDEX.lookup(text)
