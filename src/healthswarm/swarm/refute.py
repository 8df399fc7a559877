"""What a real node refutes: a peer's warning (an indicator or a sighting) about a value the organisation's own
data shows benign. The node does the rest (node.py, docs/swarm.md "Lying peers"): the item is dropped, its
claimant loses reputation, and the refutation goes to the swarm as a signed `benign` item, through the egress
gate, which other nodes weigh to dispute the claim.

Evidence, and what each kind does:

- **Vouched for**: `<workspace>/swarm/benign`, one `type:value` a line (`domain:updates.vendor.example`,
  `ipv4:198.51.100.20`, `ipv4:198.51.100.0/28`; a domain covers its sub-domains; `#` starts a comment), which
  the organisation writes for the partner services and providers it vouches for: its cloud EHR, a vendor's
  update server, the national health network's resolvers. Refuted and shared: the benign item leaves when the
  gate lets it (a value that is internal or holds a patient id or another sensitive value does not).
- **Ours**: what the egress gate calls internal (the organisation's inventory: its assets' addresses, ranges
  and host names; the host names and internal addresses of its stored events; RFC 1918, loopback, `.local` and
  friends). A peer's private address names a machine of the peer's network, never ours, and an honest peer's
  gate never sends one; a warning naming our own machines would have the agent alert on all their traffic.
  Refuted here and not shared: the gate refuses a benign item that names our own assets.
- Not evidence: having seen a value for a long time without an alert. Implants beacon for months unnoticed
  (SUNBURST's avsvmcloud.com did); a peer's warning is how we learn of it, and the retro-hunt shows since when.
  Nor is a partner's asset in the inventory: partners are compromised too (a vendor's remote-support desk is a
  way in); vouch for a partner's service in the file when it is one to vouch for.
"""

from __future__ import annotations

import ipaddress
import logging
from collections import Counter
from pathlib import Path

from healthswarm.model.indicator import INDICATOR_TYPES
from healthswarm.respond.ours import host_of
from healthswarm.share.sensitive import Network, Sensitive
from healthswarm.swarm.items import Item

log = logging.getLogger("healthswarm.swarm")
BENIGN_FILE = "benign"
ADDRESS_TYPES = ("ipv4", "ipv6")


class VouchedFor:
    """The values of `<folder>/benign`, re-read when the file changes (one stat per round)."""

    def __init__(self, folder: Path) -> None:
        self.path = folder / BENIGN_FILE
        self._stamp: tuple[int, int] | None = None
        self.values: frozenset[tuple[str, str]] = frozenset()
        self.networks: tuple[Network, ...] = ()

    def reload(self) -> None:
        try:
            st = self.path.stat()
        except FileNotFoundError:
            self._stamp, self.values, self.networks = None, frozenset(), ()
            return
        stamp = (st.st_mtime_ns, st.st_ino)
        if stamp == self._stamp:
            return
        try:
            lines = self.path.read_text(encoding="utf-8").splitlines()
        except (OSError, UnicodeDecodeError) as exc:
            log.warning("%s: cannot read: %s", self.path, exc)
            return
        self._stamp = stamp
        values: set[tuple[str, str]] = set()
        networks: list[Network] = []
        for number, line in enumerate(lines, 1):
            text = line.split("#", 1)[0].strip()
            if not text:
                continue
            kind, _, value = text.partition(":")
            kind, value = kind.strip().lower(), value.strip()
            if kind not in INDICATOR_TYPES or not value:
                log.warning("%s:%d: %r skipped: expected TYPE:VALUE with TYPE one of %s", self.path, number, text,
                            ", ".join(sorted(INDICATOR_TYPES)))
                continue
            if kind in ADDRESS_TYPES and "/" in value:
                try:
                    networks.append(ipaddress.ip_network(value, strict=False))
                except ValueError:
                    log.warning("%s:%d: %r skipped: not an address range", self.path, number, text)
                continue
            values.add((kind, value.lower().rstrip(".") if kind == "domain" else value))
        self.values, self.networks = frozenset(values), tuple(networks)

    def holds(self, kind: str, value: str) -> bool:
        if (kind, value) in self.values:
            return True
        if kind in ADDRESS_TYPES and self.networks:
            try:
                ip = ipaddress.ip_address(value)
            except ValueError:
                return False
            return any(ip in net for net in self.networks)
        if kind == "domain":
            labels = value.lower().rstrip(".").split(".")
            return any(("domain", ".".join(labels[i:])) in self.values for i in range(len(labels) - 1))
        return False


class LocalEvidence:
    """The node's refuter (`SwarmNode.refuter`): True for a peer's warning our own data shows benign; `counts`
    says how many by which evidence (for status.json)."""

    def __init__(self, known: Sensitive, vouched: VouchedFor) -> None:
        self.known, self.vouched = known, vouched
        self.counts: Counter[str] = Counter()

    def why_benign(self, kind: str, value: str) -> str:
        """The evidence that `kind:value` is benign here ('' when there is none)."""
        if self.vouched.holds(kind, value):
            return "vouched-for"
        if kind in ADDRESS_TYPES:
            return "ours" if self.known.is_internal_address(value) else ""
        host = host_of(kind, value)
        return "ours" if host is not None and self.known.is_internal_host(host) else ""

    def __call__(self, item: Item) -> bool:
        if item.raw.get("kind") not in ("indicator", "sighting"):
            return False
        data = item.raw.get("data", {})
        why = self.why_benign(str(data.get("type", "")), str(data.get("value", "")))
        if why:
            self.counts[why] += 1
        return bool(why)
