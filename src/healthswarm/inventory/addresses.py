"""Address → asset resolution, built once from the inventory and asked once per event.

Exact host addresses sit in a dict keyed by their canonical text, so the common case (a log names an
inventory host) costs one dict lookup on the string as the log wrote it. Networks (CIDR ranges) are
kept as sorted, non-overlapping integer intervals searched by bisection: O(log n), no scan. The
inventory validator guarantees that no two assets' addresses overlap, so at most one interval holds
an address.
"""

from __future__ import annotations

import ipaddress
import socket
from bisect import bisect_right
from collections.abc import Iterable

from healthswarm.model import Asset


def _to_int(text: str) -> tuple[int, int] | None:
    """(version, integer) of an address; None when the text is not an IP address."""
    try:
        return 4, int.from_bytes(socket.inet_pton(socket.AF_INET, text), "big")
    except (OSError, ValueError):  # ValueError: text with a NUL byte
        pass
    try:
        return 6, int(ipaddress.IPv6Address(text.split("%", 1)[0]))
    except ValueError:
        return None


class AddressIndex:
    def __init__(self, assets: Iterable[Asset]) -> None:
        self._hosts: dict[str, str] = {}
        ranges: dict[int, list[tuple[int, int, str]]] = {4: [], 6: []}
        for asset in assets:
            for text in asset.addresses:
                network = ipaddress.ip_network(text, strict=False)
                if network.num_addresses == 1:
                    self._hosts[str(network.network_address)] = asset.id
                else:
                    ranges[network.version].append(
                        (int(network.network_address), int(network.broadcast_address), asset.id))
        self._starts: dict[int, list[int]] = {}
        self._ranges: dict[int, list[tuple[int, int, str]]] = {}
        for version, items in ranges.items():
            items.sort()
            self._ranges[version] = items
            self._starts[version] = [start for start, _, _ in items]

    def __len__(self) -> int:
        return len(self._hosts) + sum(len(r) for r in self._ranges.values())

    def lookup(self, address: str) -> str | None:
        """The id of the asset that owns `address`, or None (an external or unknown address)."""
        hit = self._hosts.get(address)
        if hit is not None:
            return hit
        parsed = _to_int(address)
        if parsed is None:
            return None
        version, number = parsed
        if version == 6:
            v6 = ipaddress.IPv6Address(number)
            if v6.ipv4_mapped is not None:  # ::ffff:10.0.0.1 is the IPv4 host 10.0.0.1
                return self.lookup(str(v6.ipv4_mapped))
            # the log may write an IPv6 address in a non-canonical form (leading zeros, no ::)
            if (hit := self._hosts.get(str(v6))) is not None:
                return hit
        starts = self._starts[version]
        i = bisect_right(starts, number) - 1
        if i >= 0:
            _, end, asset_id = self._ranges[version][i]
            if number <= end:
                return asset_id
        return None


class Hl7Index:
    """HL7 v2 header names → asset: the application (MSH-3 sending / MSH-5 receiving) and facility (MSH-4 /
    MSH-6) an asset declares under `hl7:` in the inventory. A declaration without a facility matches the
    application at any facility; one with a facility wins over it. Names compare case-insensitively."""

    def __init__(self, assets: Iterable[Asset]) -> None:
        self._names: dict[tuple[str, str], str] = {}
        for asset in assets:
            if asset.hl7 is None:
                continue
            for app in asset.hl7.applications:
                self._names.setdefault((app.strip().lower(), asset.hl7.facility.strip().lower()), asset.id)

    def __len__(self) -> int:
        return len(self._names)

    def lookup(self, application: object, facility: object = "") -> str | None:
        """The asset that is `application` at `facility`, or None (a sender the inventory does not declare)."""
        if not isinstance(application, str) or not application.strip():
            return None
        app = application.strip().lower()
        place = facility.strip().lower() if isinstance(facility, str) else ""
        return self._names.get((app, place)) or self._names.get((app, ""))
