"""Our own things, which a responder never watches as if they came from outside, and the selector
`case.external-observables` that leaves them out.

Ours: every address, network and host name of the inventory's assets (the partners' ones too: a partner's
interconnect talks to us all day, and watching it is an analyst's decision), the parent domain of each
host name (`ws-icu-07.sta.example` makes `*.sta.example` ours), a name without a dot (no public name has
none: `WS-ICU-07` from a log's host.name), and what the egress gate calls internal whoever owns it
(model/network.py: RFC 1918 and friends, `.local` and friends).

Why it matters: a case's observables hold the hospital's own workstations and servers beside the attacker's
address, and the watchlist detector alerts on every event that names a watched value. Watching an own
workstation alerts on all its traffic; `watchlist-add case.external-observables` (the shipped playbooks)
watches only the attacker's side, which is what lets the policy run it without an analyst. Only the types the
watchlist detector compares are given (addresses, domains, URLs, e-mail addresses, hashes): a file name
would sit on the list matching nothing.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING

from healthswarm.detect.watchlist import TYPE_KINDS
from healthswarm.model import Asset
from healthswarm.model.network import INTERNAL_SUFFIXES, Network, add_declared, is_internal_address

if TYPE_CHECKING:  # the actions package imports this module for its selector table
    from healthswarm.respond.actions.base import ActionContext

_SCHEME = re.compile(r"^[a-z][a-z0-9+.-]*://", re.IGNORECASE)


@dataclass(frozen=True)
class Own:
    """The addresses, networks, names and name suffixes that are ours."""

    addresses: frozenset[str]
    networks: tuple[Network, ...]
    names: frozenset[str]
    suffixes: frozenset[str]

    @classmethod
    def of(cls, assets: Iterable[Asset]) -> Own:
        """Ours in an inventory; built once per inventory (the ids, addresses and names): parsing every
        declared address was a third of the agent's time per case opened by policy."""
        return _own_of(tuple((a.id, tuple(a.addresses), tuple(a.hostnames)) for a in assets))

    def has_address(self, text: str) -> bool:
        return is_internal_address(text, self.networks, self.addresses)

    def has_name(self, name: str) -> bool:
        name = name.lower().rstrip(".")
        if "." not in name or name in self.names or self.has_address(name):
            return True
        return any(name == s or name.endswith("." + s) for s in self.suffixes)

    def holds(self, type_: str, value: str) -> bool:
        """Whether the observable `type_:value` is ours (a hash never is: it names a file, not a place)."""
        if type_ in ("ipv4", "ipv6"):
            return self.has_address(value)
        host = host_of(type_, value)
        return host is not None and self.has_name(host)


@lru_cache(maxsize=4)
def _own_of(assets: tuple[tuple[str, tuple[str, ...], tuple[str, ...]], ...]) -> Own:
    addresses: set[str] = set()
    networks: list[Network] = []   # declared ranges: every address in them is ours
    names: set[str] = set()
    suffixes = set(INTERNAL_SUFFIXES)
    for asset_id, declared, hostnames in assets:
        names.add(asset_id.lower())
        add_declared(declared, addresses, networks)
        for hostname in hostnames:   # a dotless one ("sta-ws-03") is ours anyway: see has_name
            name = hostname.lower().rstrip(".")
            parent = name.partition(".")[2]
            names.add(name)
            if "." in parent:  # "sta.example", never a bare top-level domain
                suffixes.add(parent)
    return Own(frozenset(addresses), tuple(networks), frozenset(names), frozenset(suffixes))


def host_of(type_: str, value: str) -> str | None:
    """The host name an observable points at: a domain itself, a URL's host, an e-mail address's domain."""
    if type_ == "domain":
        return value
    if type_ == "url":
        host = _SCHEME.sub("", value).split("/", 1)[0].rsplit("@", 1)[-1]
        return host[1:].split("]", 1)[0] if host.startswith("[") else host.split(":", 1)[0]
    if type_ == "email":
        return value.rsplit("@", 1)[-1]
    return None


def external_observables(ctx: ActionContext) -> list[str]:
    """The case's observables (`type:value`) the watchlist can match that are not ours."""
    own = Own.of(ctx.assets.values())
    return [f"{o.type}:{o.value}" for o in ctx.case.observables
            if o.type in TYPE_KINDS and not own.holds(o.type, o.value)]
