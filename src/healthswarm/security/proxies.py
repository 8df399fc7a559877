"""Who the client is: the address that connected, unless that address is a configured reverse proxy.

`X-Forwarded-For` is any client's to write. It is believed only when the connection comes from one of
`[api] trusted_proxies` (empty by default: none), and then only up to the first address that is not itself a
trusted proxy, read from the right: that is the address the outermost trusted proxy saw connect. uvicorn is
told the same list (`uvicorn_options`), so its own rewriting of the client address agrees with ours.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, MutableMapping
from typing import Any

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class TrustedProxies:
    """The reverse proxies whose forwarding headers are believed (addresses or CIDR networks)."""

    def __init__(self, entries: Iterable[str] = ()) -> None:
        self.networks: tuple[Network, ...] = tuple(ipaddress.ip_network(e.strip(), strict=False) for e in entries)

    def __bool__(self) -> bool:
        return bool(self.networks)

    def __contains__(self, host: str) -> bool:
        try:
            address = ipaddress.ip_address(host.strip().strip("[]"))
        except ValueError:
            return False
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            address = address.ipv4_mapped
        return any(address in network for network in self.networks)

    def client(self, scope: MutableMapping[str, Any]) -> str:
        """The client address of an ASGI `scope`: the peer, or what trusted proxies in front of it forwarded."""
        peer: str = (scope.get("client") or ("unknown", 0))[0]
        if not self.networks or peer not in self:
            return peer
        hops = [hop.strip() for name, value in scope.get("headers", ()) if name == b"x-forwarded-for"
                for hop in value.decode("latin-1").split(",") if hop.strip()]
        for hop in reversed(hops):
            if hop not in self:
                return hop
        return hops[0] if hops else peer  # every hop a trusted proxy: the first one is the client

    def uvicorn_options(self) -> dict[str, Any]:
        """uvicorn's `proxy_headers` / `forwarded_allow_ips` for this list (by default uvicorn trusts loopback)."""
        hosts = [str(n.network_address) if n.num_addresses == 1 else str(n) for n in self.networks]
        return {"proxy_headers": bool(hosts), "forwarded_allow_ips": ",".join(hosts)}
