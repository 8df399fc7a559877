"""The egress gate: the one way anything leaves the organisation.

Every path to a peer — a STIX bundle, a MISP feed event, the objects our TAXII collection serves, the
items our swarm node gossips, an incident report — goes through one pipeline here:

    select by sharing policy (TLP 2.0 and the peer group) → sanitise → leak check → sign

and nothing else in the code base signs for the organisation (a test walks every module's syntax tree
and fails on a signer called outside this file). Transports accept only `Released`, which only this
module can make: `SwarmNode.publish`, `write_feed` and `TaxiiClient.push` refuse anything else. A leak
check hit refuses the whole release and records why (never the value: a fingerprint). Every release
and refusal is appended to the audit (`<workspace>/egress/audit.jsonl`): what left, on which path, to
whom, when, its digest and what the sanitiser removed.

`preview` runs the same pipeline without signing or recording: what would leave now, per path, with
what was removed or refused and why — what a data-protection officer reads before sharing is switched on.
"""

from __future__ import annotations

import functools
import gc
import hashlib
import json
import os
import re
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

import orjson

from healthswarm.model import Alert, Asset, Finding, Indicator
from healthswarm.share.leakcheck import Hit, LeakChecker
from healthswarm.share.markings import TLP_ORDER, normalise_tlp
from healthswarm.share.misp import feed_from_bundle
from healthswarm.share.patterns import without_query
from healthswarm.share.sanitise import Policy, Sanitiser, policy_for
from healthswarm.share.secrets import Pseudonymiser, load_or_create_secret
from healthswarm.share.sensitive import Sensitive
from healthswarm.share.signing import DEFAULT_VALIDITY, KeyPair, load_or_create_keys, sign_document, sign_item
from healthswarm.share.stix_export import ExportContext, build_bundle

#: every outbound path, with what travels on it; the canary suite covers each (a new one without a test fails)
PATHS: dict[str, str] = {
    "stix": "a signed STIX 2.1 bundle for a peer (share export)",
    "misp": "a MISP feed event, derived from the released STIX bundle (share export --misp-feed)",
    "taxii": "STIX objects, each signed, that our TAXII collection serves to peers (share publish)",
    "gossip": "the swarm items our node signs and gossips (agent, node publish, demo)",
    "report": "one incident for peers: a signed STIX bundle with its report (share report)",
}
AUDIT = Path("egress") / "audit.jsonl"
#: the sanitiser's and the gate's rule ids, as a person reads them (an id without words is shown as it is)
REMOVED_WORDS: dict[str, str] = {
    "user": "user names replaced", "host": "host names replaced", "patient": "patient identifiers replaced",
    "email": "internal e-mail addresses replaced", "address": "internal addresses removed",
    "address-cryptopan": "internal addresses anonymised (Crypto-PAn)", "hl7-pid": "HL7 PID segments redacted",
    "url-query": "URL query strings cut", "asset": "asset ids replaced", "org": "organisation names replaced",
    "internal-address": "internal address objects dropped", "internal-host": "internal host objects dropped",
    "internal-indicator": "indicators of internal things dropped",
    "sensitive-indicator": "indicators holding sensitive values dropped", "free-text": "free texts withheld",
    "user-account": "user accounts dropped", "mac-addr": "MAC addresses dropped", "process": "processes dropped",
    "directory": "directories dropped", "windows-registry-key": "registry keys dropped",
    "technique-not-attack": "technique ids that are not ATT&CK dropped",
    "observed-data-orphaned": "observations left with no shareable observable dropped",
    "sighting-orphaned": "sightings left with nothing to point at dropped",
    "relationship-orphaned": "relationships left with an end dropped",
}
REFUSAL_WORDS: dict[str, str] = {
    "leak:host": "leak check: an internal host name", "leak:user": "leak check: a user name",
    "leak:patient": "leak check: a patient identifier or name", "leak:address": "leak check: an internal address",
    "leak:asset": "leak check: an asset id, serial or location", "leak:org": "leak check: an organisation's name",
    "internal-address": "an internal address", "internal-host": "an internal host name",
    "technique-not-attack": "not an ATT&CK technique id", "already-published": "already published (not signed again)",
}
GOSSIP_GROUP = "sector"   # every swarm member may read what we gossip: at most TLP:AMBER
_TECHNIQUE = re.compile(r"^T\d{4}(?:\.\d{3})?$")
_SEAL = object()


P = ParamSpec("P")
R = TypeVar("R")


def _collector_paused(method: Callable[P, R]) -> Callable[P, R]:
    """The cyclic garbage collector off during a release. A bundle is a tree of some 100,000 dicts, lists and
    strings without a cycle, freed by reference counting; the collector's passes over the whole heap that so
    many allocations set off were a tenth of an export's time. It is switched on again only if it was on."""
    @functools.wraps(method)
    def paused(*args: P.args, **kwargs: P.kwargs) -> R:
        was_on = gc.isenabled()
        gc.disable()
        try:
            return method(*args, **kwargs)
        finally:
            if was_on:
                gc.enable()
    return paused


@dataclass
class Selection:
    """The records an export is built from (the STIX builder's inputs)."""

    alerts: list[Alert] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    assets: dict[str, Asset] = field(default_factory=dict)
    indicators: list[Indicator] = field(default_factory=list)
    incidents: list[dict[str, Any]] = field(default_factory=list)

    def records(self) -> dict[str, Any]:
        return {"alerts": self.alerts, "findings": self.findings, "assets": self.assets,
                "indicators": self.indicators, "incidents": self.incidents}


class Refused(Exception):
    """The gate refused a release; `reasons` counts why, `hits` are the leak check's (fingerprints only)."""

    def __init__(self, path: str, peer: str, reasons: Counter[str], hits: list[Hit] | None = None) -> None:
        self.path, self.peer, self.reasons, self.hits = path, peer, reasons, hits or []
        why = ", ".join(f"{k} ×{v}" for k, v in sorted(reasons.items()))
        super().__init__(f"egress {path} to {peer} refused: {why}")


@dataclass(frozen=True)
class Released:
    """What the gate let out, signed; the only thing a transport accepts. Made by `EgressGate` alone."""

    path: str
    peer: str
    payload: Any
    objects: int
    key_id: str
    removed: dict[str, int]
    digest: str
    seal: object = field(default=None, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.seal is not _SEAL:
            raise TypeError("Released is made by the egress gate only (share.egress.EgressGate)")

    def require(self, path: str) -> Released:
        """This release, when it is for `path` (transports call it); TypeError otherwise."""
        if self.path != path:
            raise TypeError(f"a {self.path} release cannot travel on the {path} path")
        return self


@dataclass
class Candidate:
    """A swarm item we would like to gossip: its kind, its data, and the TLP of what it came from."""

    kind: str
    data: dict[str, Any]
    tlp: str = "amber"


@dataclass
class Preview:
    """What one path would release now (unsigned, unrecorded): for `share preview`."""

    path: str
    peer: str
    candidates: int = 0
    released: int = 0
    removed: Counter[str] = field(default_factory=Counter)
    refused: Counter[str] = field(default_factory=Counter)
    payloads: list[Any] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {"path": self.path, "peer": self.peer, "candidates": self.candidates, "released": self.released,
                "removed": dict(self.removed), "refused": dict(self.refused), "payloads": self.payloads}


def _digest(payload: Any) -> str:
    """What the audit records of a payload: SHA-256 of its JSON with sorted keys (cheaper than RFC 8785)."""
    return hashlib.sha256(orjson.dumps(payload, option=orjson.OPT_SORT_KEYS)).hexdigest()


class EgressAudit:
    """An append-only JSON-lines record of every release and refusal (no payloads, no sensitive values)."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self.memory: list[dict[str, Any]] = []

    def record(self, entry: dict[str, Any]) -> None:
        entry = {"at": datetime.now(UTC).isoformat(timespec="milliseconds"), **entry}
        self.memory.append(entry)
        if self.path is None:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a", encoding="utf-8") as handle:
            handle.write(json.dumps(entry, sort_keys=True) + "\n")
            handle.flush()
            os.fsync(handle.fileno())   # a release we cannot account for after a crash is not allowed

    def entries(self) -> Iterator[dict[str, Any]]:
        if self.path is None or not self.path.exists():
            yield from self.memory
            return
        with self.path.open(encoding="utf-8") as handle:
            for line in handle:
                try:
                    yield json.loads(line)
                except json.JSONDecodeError:
                    continue   # a line cut by a crash: the release it describes did not complete

    def published(self, now: float) -> set[str]:
        """Subjects of gossip items released and not yet expired (so none is signed twice)."""
        return {str(e["subject"]) for e in self.entries()
                if e.get("path") == "gossip" and e.get("outcome") == "released" and float(e.get("expires", 0)) > now}


class EgressGate:
    """Select → sanitise → leak check → sign, for one organisation (see the module docstring)."""

    def __init__(self, organisation: str, known: Sensitive, keys: KeyPair, pseudonymiser: Pseudonymiser,
                 audit: EgressAudit, validity: timedelta = DEFAULT_VALIDITY) -> None:
        self.organisation = organisation
        self.known = known
        self.keys = keys
        self.pseudo = pseudonymiser
        self.audit = audit
        self.validity = validity
        self._checkers: dict[bool, LeakChecker] = {}
        self._sanitisers: dict[Policy, Sanitiser] = {}

    @classmethod
    def in_workspace(cls, workspace: Path, organisation: str, known: Sensitive,
                     validity: timedelta = DEFAULT_VALIDITY) -> EgressGate:
        """The gate of the organisation whose keys, pseudonym secret and audit live in `workspace`."""
        return cls(organisation, known, load_or_create_keys(workspace),
                   Pseudonymiser(load_or_create_secret(workspace)), EgressAudit(workspace / AUDIT), validity)

    @property
    def identity_name(self) -> str:
        return self.pseudo.organisation(self.organisation or "local")

    def checker(self, policy: Policy | None = None) -> LeakChecker:
        lenient = policy is not None and policy.addresses == "cryptopan"
        if lenient not in self._checkers:
            self._checkers[lenient] = LeakChecker(self.known, internal_addresses=lenient)
        return self._checkers[lenient]

    def sanitiser(self, policy: Policy) -> Sanitiser:
        if policy not in self._sanitisers:
            self._sanitisers[policy] = Sanitiser(policy, self.known, self.pseudo)
        return self._sanitisers[policy]

    # -- the pipeline --------------------------------------------------------------------------------
    def _clean_bundle(self, path: str, peer: str, policy: Policy, selection: Selection, now: datetime,
                      pap: str | None) -> tuple[dict[str, Any], Counter[str], list[str]]:
        """The selected records as a sanitised, leak-checked STIX bundle (unsigned); Refused on a hit."""
        ctx = ExportContext(self.identity_name, self.pseudo.derive("stix-ids"), tlp=policy.tlp, pap=pap, now=now)
        raw, skipped = build_bundle(ctx, **selection.records())
        sanitiser = self.sanitiser(policy)
        clean = sanitiser.bundle(raw)
        removed = Counter(sanitiser.report.replaced) + Counter(sanitiser.report.dropped)
        hits = self.checker(policy).check(clean)
        if hits:
            self._refuse(path, peer, Counter(f"leak:{h.kind}" for h in hits), hits, removed)
        return clean, removed, skipped

    def _refuse(self, path: str, peer: str, reasons: Counter[str], hits: list[Hit] | None = None,
                removed: Counter[str] | None = None) -> None:
        self.audit.record({"path": path, "peer": peer, "outcome": "refused", "reasons": dict(reasons),
                           "hits": [h.as_dict() for h in (hits or [])[:50]], "removed": dict(removed or {})})
        raise Refused(path, peer, reasons, hits)

    def _release(self, path: str, peer: str, payload: Any, objects: int, removed: Counter[str],
                 **extra: Any) -> Released:
        digest = _digest(payload)
        self.audit.record({"path": path, "peer": peer, "outcome": "released", "objects": objects, "digest": digest,
                           "key_id": self.keys.key_id, "removed": dict(removed), **extra})
        return Released(path, peer, payload, objects, self.keys.key_id, dict(removed), digest, _SEAL)

    def _sign(self, document: dict[str, Any], now: datetime) -> dict[str, Any]:
        identity = next((o["id"] for o in document.get("objects", []) if o.get("type") == "identity"),
                        self.identity_name)
        return sign_document(document, self.keys, identity, self.validity, now)

    # -- paths ---------------------------------------------------------------------------------------
    @_collector_paused
    def stix(self, policy: Policy, selection: Selection, *, peer: str = "", now: datetime | None = None,
             pap: str | None = None) -> tuple[Released, list[str]]:
        """A signed STIX bundle of the selection for `peer` (its group's policy); the builder's skip notes."""
        moment = now or datetime.now(UTC)
        peer = peer or policy.group
        clean, removed, skipped = self._clean_bundle("stix", peer, policy, selection, moment, pap)
        signed = self._sign(clean, moment)
        return self._release("stix", peer, signed, len(clean["objects"]), removed), skipped

    @_collector_paused
    def misp(self, policy: Policy, selection: Selection, *, peer: str = "", now: datetime | None = None,
             pap: str | None = None) -> Released:
        """A MISP feed event of the selection, derived from the clean bundle, checked again and signed."""
        moment = now or datetime.now(UTC)
        peer = peer or policy.group
        clean, removed, _skipped = self._clean_bundle("misp", peer, policy, selection, moment, pap)
        event_uuid, document = feed_from_bundle(clean)
        hits = self.checker(policy).check(document)
        if hits:
            self._refuse("misp", peer, Counter(f"leak:{h.kind}" for h in hits), hits, removed)
        signed = sign_document(document, self.keys, self.identity_name, self.validity, moment)
        return self._release("misp", peer, (event_uuid, signed), len(document["Event"]["Attribute"]), removed)

    @_collector_paused
    def taxii(self, policy: Policy, selection: Selection, *, peer: str = "", now: datetime | None = None,
              pap: str | None = None) -> Released:
        """The selection's objects for our TAXII collection, each signed (readers verify every object)."""
        moment = now or datetime.now(UTC)
        peer = peer or policy.group
        clean, removed, _skipped = self._clean_bundle("taxii", peer, policy, selection, moment, pap)
        identity = next((o["id"] for o in clean["objects"] if o.get("type") == "identity"), self.identity_name)
        signed = [sign_document(obj, self.keys, identity, self.validity, moment) for obj in clean["objects"]]
        return self._release("taxii", peer, signed, len(signed), removed)

    @_collector_paused
    def report(self, policy: Policy, selection: Selection, *, peer: str = "",
               now: datetime | None = None) -> Released:
        """One incident (its report, alerts' techniques and public indicators) as a signed bundle."""
        moment = now or datetime.now(UTC)
        peer = peer or policy.group
        if len(selection.incidents) != 1:
            raise ValueError("a report is about exactly one incident")
        clean, removed, _skipped = self._clean_bundle("report", peer, policy, selection, moment, None)
        signed = self._sign(clean, moment)
        return self._release("report", peer, signed, len(clean["objects"]), removed,
                             incident=str(selection.incidents[0].get("id", "")))

    # -- gossip --------------------------------------------------------------------------------------
    def _gossip_data(self, candidate: Candidate, policy: Policy) -> tuple[dict[str, Any], Counter[str]]:
        """The item's data as it may leave, and what was removed; Refused-style reasons as a ValueError."""
        removed: Counter[str] = Counter()
        data = dict(candidate.data)
        if TLP_ORDER.index(normalise_tlp(candidate.tlp)) > TLP_ORDER.index(policy.tlp):
            raise ValueError(f"tlp:{normalise_tlp(candidate.tlp)}-above-{policy.tlp}")
        if "techniques" in data:
            kept = [t for t in data["techniques"] if isinstance(t, str) and _TECHNIQUE.match(t)]
            if len(kept) < len(data["techniques"]):
                removed["technique-not-attack"] += len(data["techniques"]) - len(kept)
            data["techniques"] = kept
        if candidate.kind == "technique" and not _TECHNIQUE.match(str(data.get("technique", ""))):
            raise ValueError("technique-not-attack")
        if candidate.kind in {"indicator", "sighting"}:
            kind, value = str(data.get("type", "")), str(data.get("value", ""))
            if kind == "url" and not policy.url_queries and (cut := without_query(value)) != value:
                removed["url-query"] += 1
                data["value"] = value = cut
            internal = self.known.internal_observable(kind, value)
            if internal is not None:
                raise ValueError(internal)
        for key in ("value", "vendor", "model"):
            if isinstance(data.get(key), str):
                _scrubbed, kinds = self.sanitiser(policy).scrub(data[key])
                if kinds:
                    raise ValueError("sensitive-" + "-".join(sorted(kinds)))
        return data, removed

    def _gossip_prepare(self, candidates: Iterable[Candidate], peer: str) -> Iterator[
            tuple[Candidate, dict[str, Any] | None, Counter[str], Counter[str], list[Hit]]]:
        """(candidate, clean data or None, removed, refusal reasons, hits) for each candidate."""
        policy = policy_for("amber", GOSSIP_GROUP)
        checker = self.checker(policy)
        for candidate in candidates:
            try:
                data, removed = self._gossip_data(candidate, policy)
            except ValueError as exc:
                yield candidate, None, Counter(), Counter({str(exc): 1}), []
                continue
            hits = checker.check(data)
            if hits:
                yield candidate, None, removed, Counter(f"leak:{h.kind}" for h in hits), hits
                continue
            yield candidate, data, removed, Counter(), []

    def gossip(self, candidates: Iterable[Candidate], *, node: str, ttl: float, now: float | None = None,
               peer: str = "swarm") -> tuple[list[Released], Counter[str]]:
        """Signed items for our node to gossip, and why the others were refused.

        An item already released and not expired is not signed again (after a restart, say): its
        subject — kind and data — is in the audit."""
        moment = time.time() if now is None else now
        published = self.audit.published(moment)
        released: list[Released] = []
        refused: Counter[str] = Counter()
        for candidate, data, removed, reasons, hits in self._gossip_prepare(candidates, peer):
            if data is None:
                refused.update(reasons)
                self.audit.record({"path": "gossip", "peer": peer, "outcome": "refused", "kind": candidate.kind,
                                   "reasons": dict(reasons), "hits": [h.as_dict() for h in hits[:10]]})
                continue
            subject = _digest({"kind": candidate.kind, "org": node, "data": data})
            if subject in published:
                refused["already-published"] += 1
                continue
            published.add(subject)
            item = sign_item(candidate.kind, data, node, self.keys, moment, ttl)
            released.append(self._release("gossip", peer, item, 1, removed, subject=subject, kind=candidate.kind,
                                          expires=moment + ttl))
        return released, refused

    # -- preview -------------------------------------------------------------------------------------
    @_collector_paused
    def preview_bundle(self, path: str, policy: Policy, selections: list[Selection], peer: str) -> Preview:
        """What `path` would release of each selection (one bundle or report each), unsigned, unrecorded."""
        out = Preview(path, peer)
        recording, self.audit = self.audit, EgressAudit(None)
        try:
            for selection in selections:
                out.candidates += 1
                try:
                    clean, removed, _skipped = self._clean_bundle(path, peer, policy, selection,
                                                                  datetime.now(UTC), None)
                except Refused as refused:
                    out.refused.update(refused.reasons)
                    continue
                payload: Any = clean
                if path == "misp":
                    payload = feed_from_bundle(clean)[1]
                    hits = self.checker(policy).check(payload)
                    if hits:
                        out.refused.update(f"leak:{h.kind}" for h in hits)
                        continue
                out.released += 1
                out.removed.update(removed)
                out.payloads.append(payload)
        finally:
            self.audit = recording
        return out

    def preview_gossip(self, candidates: Iterable[Candidate], peer: str = "swarm") -> Preview:
        out = Preview("gossip", peer)
        for candidate, data, removed, reasons, _hits in self._gossip_prepare(candidates, peer):
            out.candidates += 1
            out.removed.update(removed)
            if data is None:
                out.refused.update(reasons)
                continue
            out.released += 1
            out.payloads.append({"kind": candidate.kind, "data": data})
        return out
