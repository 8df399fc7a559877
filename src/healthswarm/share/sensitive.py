"""What the organisation knows to be sensitive: the values sanitising replaces and the leak check hunts.

Built from the inventory (host names, addresses and networks, asset ids, serials and owners in
attributes) and from stored events (user names, host names, internal addresses, every `patient.*`
value). Internal address space is RFC 1918 / RFC 6598 / loopback / link-local / IPv6 ULA and
link-local, plus every network the inventory names.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from healthswarm.model import Inventory
from healthswarm.model.network import INTERNAL_SUFFIXES, Network, add_declared, is_internal_address

USER_FIELDS = ("user.name", "user.id", "user.email", "user.full_name", "source.user.name", "destination.user.name",
               "user.target.name", "user.effective.name", "related.user", "client.user.name", "server.user.name")
HOST_FIELDS = ("host.name", "host.hostname", "observer.hostname", "observer.name", "agent.hostname", "related.hosts",
               "source.domain", "destination.domain")
ADDRESS_FIELDS = ("source.ip", "destination.ip", "host.ip", "client.ip", "server.ip", "related.ip", "observer.ip")
MIN_LENGTH = 3  # shorter values ("a", "pc") would match everywhere
# a patient's name is sensitive whole and in parts ("DOE^JANE", "Doe, Jane A"): a family name alone identifies
_NAME_PARTS = re.compile(r"[\^,\s]+")
_NOT_A_NAME = frozenset({"mr", "mrs", "ms", "miss", "dr", "prof", "jr", "sr", "ii", "iii", "von", "van", "der", "de"})


@dataclass
class Sensitive:
    """Sensitive values by kind: host, user, patient, address, asset (ids, serials, owners), org (ids, names)."""

    hosts: set[str] = field(default_factory=set)
    users: set[str] = field(default_factory=set)
    patients: set[str] = field(default_factory=set)
    addresses: set[str] = field(default_factory=set)
    assets: set[str] = field(default_factory=set)
    orgs: set[str] = field(default_factory=set)
    networks: list[Network] = field(default_factory=list)
    suffixes: set[str] = field(default_factory=lambda: set(INTERNAL_SUFFIXES))

    def values(self) -> Iterable[tuple[str, str]]:
        """(kind, value) of every known value long enough to search for."""
        for kind, values in (("host", self.hosts), ("user", self.users), ("patient", self.patients),
                             ("address", self.addresses), ("asset", self.assets), ("org", self.orgs)):
            for value in values:
                if len(value) >= MIN_LENGTH:
                    yield kind, value

    def is_internal_address(self, text: str) -> bool:
        cache: dict[str, bool] | None = getattr(self, "_internal_cache", None)
        if cache is None or len(cache) > 100_000:
            cache = self._internal_cache = {}
        found = cache.get(text)
        if found is None:
            found = cache[text] = self._is_internal_address(text)
        return found

    def _is_internal_address(self, text: str) -> bool:
        return is_internal_address(text, self.networks, self.addresses)

    def is_internal_host(self, name: str) -> bool:
        lowered = name.lower().rstrip(".")
        if lowered in self._hosts_lower():
            return True
        return any(lowered == s or lowered.endswith("." + s) for s in self.suffixes)

    def internal_observable(self, kind: str, value: str) -> str | None:
        """Why an indicator of `kind` names something of ours ("internal-address", "internal-host"), or None:
        an internal address, or a domain, URL or e-mail address on an internal host or under our domains."""
        if kind in {"ipv4", "ipv6"}:
            return "internal-address" if self.is_internal_address(value.split("/", 1)[0]) else None
        host = host_of(kind, value)
        return "internal-host" if host is not None and self.is_internal_host(host) else None

    def _hosts_lower(self) -> set[str]:
        cached: set[str] | None = getattr(self, "_hl", None)
        if cached is None or len(cached) != len(self.hosts):
            cached = {h.lower() for h in self.hosts}
            self._hl = cached
        return cached

    def add_host(self, name: str) -> None:
        self._internal_cache = {}
        name = name.strip().rstrip(".")
        if not name:
            return
        self.hosts.add(name)
        if "." in name:
            short, domain = name.split(".", 1)
            # "ws-icu-07" names one machine; "vpn", "mail", "portal" are words every advisory uses
            if any(c.isdigit() or c == "-" for c in short):
                self.hosts.add(short)
            if "." in domain:  # keep "sta.example", never a bare TLD
                self.suffixes.add(domain.lower())

    def merge(self, other: Sensitive) -> None:
        self._internal_cache: dict[str, bool] = {}
        self.hosts |= other.hosts
        self.users |= other.users
        self.patients |= other.patients
        self.addresses |= other.addresses
        self.assets |= other.assets
        self.orgs |= other.orgs
        self.networks.extend(n for n in other.networks if n not in self.networks)
        self.suffixes |= other.suffixes


def host_of(kind: str, value: str) -> str | None:
    """The host a domain, URL or e-mail indicator names; None for other kinds."""
    if kind == "url":
        return re.sub(r"^[a-z][a-z0-9+.-]*://", "", value, flags=re.I).split("/", 1)[0].split(":", 1)[0]
    if kind == "email":
        return value.rsplit("@", 1)[-1]
    return value if kind == "domain" else None


def from_inventory(inventory: Inventory, organisation: str | None = None) -> Sensitive:
    """Everything of the inventory (or of one organisation's part of it) that must not leave."""
    out = Sensitive()
    for org in inventory.organisations:
        out.orgs.update(v for v in (org.id, org.name) if v)
    for zone in inventory.zones:
        if not organisation or zone.organisation == organisation:
            out.assets.add(zone.id)
    for asset in inventory.assets:
        if organisation and asset.organisation != organisation:
            continue
        out.assets.add(asset.id)
        for name in asset.hostnames:
            out.add_host(name)
        add_declared(asset.addresses, out.addresses, out.networks)
        for key, value in asset.attributes.items():
            if key.lower() in {"serial", "serial_number", "owner", "location", "room", "mac", "asset_tag"} and value:
                out.assets.add(str(value))
    return out


def _strings(value: Any) -> Iterable[str]:
    if isinstance(value, str):
        if value.strip():
            yield value.strip()
    elif isinstance(value, list | tuple):
        for item in value:
            yield from _strings(item)
    elif isinstance(value, int | float) and not isinstance(value, bool):
        yield str(value)


def from_event_fields(records: Iterable[Mapping[str, Any]], base: Sensitive | None = None) -> Sensitive:
    """User and host names, internal addresses and patient values found in events' flat ECS fields."""
    out = Sensitive()
    for fields in records:
        for name, value in fields.items():
            if name.startswith("patient."):
                for text in _strings(value):
                    out.patients.add(text)
                    if name.endswith("name"):
                        out.patients.update(part for part in _NAME_PARTS.split(text)
                                            if len(part) >= MIN_LENGTH and part.isalpha()
                                            and part.lower() not in _NOT_A_NAME)
            elif name in USER_FIELDS:
                for user in _strings(value):
                    out.users.add(user)
                    if "\\" in user:  # DOMAIN\user
                        out.users.add(user.rsplit("\\", 1)[1])
                    if "@" in user:
                        out.users.add(user.split("@", 1)[0])
            elif name in HOST_FIELDS:
                for host in _strings(value):
                    # a domain in source/destination is only ours when it is internal
                    if name.endswith(".domain") and not (base or out).is_internal_host(host):
                        continue
                    out.add_host(host)
            elif name in ADDRESS_FIELDS:
                for text in _strings(value):
                    if (base or out).is_internal_address(text):
                        out.addresses.add(text)
    return out
