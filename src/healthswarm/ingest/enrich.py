"""Tie events to the inventory: which asset (and so which organisation) each address or host is.

Sets `source.asset.id` / `destination.asset.id` from the addresses (for an HL7 v2 message without them — a
file, or a feed that does not give the MLLP peer's address — from the sending and receiving application and
facility in MSH-3..6, as the inventory declares them under `hl7:`), `asset.id` from the host
(`host.ip`, `host.name`, `host.hostname`), else from the source, else the destination (the
inventory's side of a connection), and `organization.id` from that asset, else the agent's own
organisation. Lookups are memoised: logs repeat the same few hundred addresses millions of times.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from healthswarm.inventory import AddressIndex
from healthswarm.inventory.addresses import Hl7Index
from healthswarm.model import Asset, Event

_CACHE_LIMIT = 100_000


class Enricher:
    def __init__(self, assets: Iterable[Asset], organisation: str = "") -> None:
        assets = list(assets)
        self.organisation = organisation
        self._index = AddressIndex(assets)
        self._hl7 = Hl7Index(assets)
        self._hostnames: dict[str, str] = {}
        for asset in assets:
            for name in asset.hostnames:
                self._hostnames[name.lower()] = asset.id
                # a log may name the host short (pacs01) where the inventory has pacs01.example.org
                self._hostnames.setdefault(name.lower().split(".", 1)[0], asset.id)
        self._owner = {a.id: a.organisation for a in assets}
        self._cache: dict[str, str | None] = {}

    @property
    def empty(self) -> bool:
        return not self._owner and not self.organisation

    def address(self, text: Any) -> str | None:
        if not isinstance(text, str):
            return None
        try:
            return self._cache[text]
        except KeyError:
            pass
        hit = self._index.lookup(text)
        if len(self._cache) >= _CACHE_LIMIT:
            self._cache.clear()
        self._cache[text] = hit
        return hit

    def host(self, name: Any) -> str | None:
        if not isinstance(name, str) or not name:
            return None
        lowered = name.lower()
        return self._hostnames.get(lowered) or self._hostnames.get(lowered.split(".", 1)[0])

    def _host_asset(self, f: dict[str, Any]) -> str | None:
        host_ip = f.get("host.ip")
        for ip in host_ip if isinstance(host_ip, list) else (host_ip,):
            if (hit := self.address(ip)) is not None:
                return hit
        return self.host(f.get("host.name")) or self.host(f.get("host.hostname"))

    def enrich(self, event: Event) -> None:
        f = event.fields
        src = self.address(f.get("source.ip"))
        dst = self.address(f.get("destination.ip"))
        if self._hl7 and ("hl7.sending_application" in f or "hl7.receiving_application" in f):
            # the MLLP peer's address, where known, names the sender; else the message's own header does
            src = src or self._hl7.lookup(f.get("hl7.sending_application"), f.get("hl7.sending_facility"))
            dst = dst or self._hl7.lookup(f.get("hl7.receiving_application"), f.get("hl7.receiving_facility"))
        if src is not None:
            f["source.asset.id"] = src
        if dst is not None:
            f["destination.asset.id"] = dst
        asset = f.get("asset.id") or self._host_asset(f) or src or dst
        if asset is not None:
            f["asset.id"] = asset
        org = self._owner.get(asset) if asset is not None else None
        if org or self.organisation:
            f.setdefault("organization.id", org or self.organisation)
