"""Our records (alerts, findings, indicators; incidents later) as a STIX 2.1 bundle.

The builder writes plain dicts shaped exactly as the `stix2` package serialises them (a test parses
every object with `stix2` and compares, and runs `stix2-validator` on the bundle): `stix2` is the
reference, but building through its classes costs ~0.5 ms an object, which is the bottleneck of an
export. `reference_bundle` rebuilds a bundle through `stix2` for the baseline and the proof.

Sanitising is a separate step (`share.sanitise`) over the built bundle: the builder exports what the
records say, and leaves out only what is never shareable (user names, asset ids, event sources).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

from healthswarm.model import Alert, Asset, AttackRef, Finding, Indicator
from healthswarm.share.ids import random_id, sco_id, sdo_id, stamp, stamp_any
from healthswarm.share.markings import normalise_tlp, pap_marking, tlp_marking
from healthswarm.share.patterns import HASH_NAMES, observable_for, pattern_for

INCIDENT_CORE_EXTENSION = "extension-definition--ef765651-680c-498d-9894-99799f2fa126"

# ECS fields of alert details that hold public observables, by indicator type
_OBSERVABLE_FIELDS: dict[str, str] = {
    "source.ip": "ip", "destination.ip": "ip", "client.ip": "ip", "server.ip": "ip", "related.ip": "ip",
    "source.domain": "domain", "destination.domain": "domain", "dns.question.name": "domain",
    "url.domain": "domain", "related.hosts": "domain", "url.full": "url", "url.original": "url",
    "file.hash.md5": "md5", "file.hash.sha1": "sha1", "file.hash.sha256": "sha256", "file.hash.sha512": "sha512",
    "process.hash.md5": "md5", "process.hash.sha1": "sha1", "process.hash.sha256": "sha256",
    # the entities detectors put on alerts (healthswarm.detect.entities)
    "entities.ip": "ip", "entities.domain": "domain", "entities.sha256": "sha256", "entities.url": "url",
}
_LEVEL_CONFIDENCE = {"informational": 15, "low": 30, "medium": 50, "high": 70, "critical": 85}


@dataclass
class ExportContext:
    """Who exports, under which markings, and the secret that keys deterministic ids."""

    pseudonym: str  # the organisation's pseudonym (`share.keys.Pseudonymiser.organisation`)
    secret: bytes
    tlp: str = "amber"
    pap: str | None = None
    now: datetime = field(default_factory=lambda: datetime.now(UTC))

    def __post_init__(self) -> None:
        self.tlp = normalise_tlp(self.tlp)


def _attack_url(technique: str) -> str:
    if technique.startswith("TA"):
        return f"https://attack.mitre.org/tactics/{technique}/"
    return "https://attack.mitre.org/techniques/" + technique.replace(".", "/") + "/"


def _flatten(details: Mapping[str, Any], prefix: str = "") -> Iterable[tuple[str, Any]]:
    for key, value in details.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            yield from _flatten(value, name + ".")
        else:
            yield name, value


@lru_cache(maxsize=65536)
def _ip_kind(text: str) -> str | None:
    try:
        return "ipv4" if ipaddress.ip_address(text).version == 4 else "ipv6"
    except ValueError:
        return None


def observables_of(details: Mapping[str, Any]) -> list[tuple[str, str]]:
    """(indicator type, value) pairs named by the ECS fields of an alert's details, in order, unique."""
    found: dict[tuple[str, str], None] = {}
    for name, value in _flatten(details):
        kind = _OBSERVABLE_FIELDS.get(name)
        if kind is None:
            continue
        for item in value if isinstance(value, list | tuple) else [value]:
            if not isinstance(item, str) or not item.strip():
                continue
            text = item.strip()
            if kind == "ip":
                kind_ip = _ip_kind(text)
                if kind_ip:
                    found[(kind_ip, text)] = None
            else:
                found[(kind, text.lower() if kind in HASH_NAMES or kind == "domain" else text)] = None
    return list(found)


class BundleBuilder:
    """Accumulates STIX objects (deduplicated by id) and writes the bundle."""

    def __init__(self, ctx: ExportContext) -> None:
        self.ctx = ctx
        self.objects: dict[str, dict[str, Any]] = {}
        self.skipped: list[str] = []
        self._observables: dict[tuple[str, str], str | None] = {}
        self._now = stamp(ctx.now)
        self._now_any = stamp_any(ctx.now)
        self.markings = [tlp_marking(ctx.tlp)] + ([pap_marking(ctx.pap)] if ctx.pap else [])
        self._marking_refs = [m["id"] for m in self.markings]
        self.identity_id = sdo_id("identity", ctx.secret, "organisation")
        self.add({
            "type": "identity", "spec_version": "2.1", "id": self.identity_id,
            "created": self._now, "modified": self._now, "name": ctx.pseudonym,
            "description": "Pseudonymous healthcare organisation (healthswarm peer)",
            "identity_class": "organization", "sectors": ["healthcare"],
            "object_marking_refs": list(self._marking_refs),
        })

    # -- helpers -------------------------------------------------------------------------------
    def add(self, obj: dict[str, Any]) -> str:
        self.objects.setdefault(obj["id"], obj)
        return obj["id"]

    def _common(self, kind: str, ident: str, created: str | None = None, modified: str | None = None) -> dict[str, Any]:
        return {
            "type": kind, "spec_version": "2.1", "id": ident,
            "created_by_ref": self.identity_id,
            "created": created or self._now, "modified": modified or created or self._now,
            "object_marking_refs": list(self._marking_refs),
        }

    def _sdo_id(self, kind: str, *basis: str) -> str:
        return sdo_id(kind, self.ctx.secret, *basis)

    def observable(self, kind: str, value: str) -> str | None:
        key = (kind, value)
        if key in self._observables:  # the same address or hash on many alerts: its id is computed once
            return self._observables[key]
        made = observable_for(kind, value)
        ident = None
        if made is not None:
            sco_type, props = made
            ident = sco_id(sco_type, props)
            if ident not in self.objects:
                self.add({"type": sco_type, "spec_version": "2.1", "id": ident, **props,
                          "object_marking_refs": list(self._marking_refs)})
        self._observables[key] = ident
        return ident

    # -- records -------------------------------------------------------------------------------
    def attack_pattern(self, ref: AttackRef) -> str:
        ident = self._sdo_id("attack-pattern", ref.id)
        if ident not in self.objects:
            obj = self._common("attack-pattern", ident)
            obj["name"] = ref.name or ref.id
            obj["description"] = f"MITRE ATT&CK {ref.id}" + (f": {ref.name}" if ref.name else "")
            obj["external_references"] = [
                {"source_name": "mitre-attack", "url": _attack_url(ref.id), "external_id": ref.id}]
            self.add(obj)
        return ident

    def vulnerability(self, cve: str, description: str = "") -> str:
        ident = self._sdo_id("vulnerability", cve)
        if ident not in self.objects:
            obj = self._common("vulnerability", ident)
            obj["name"] = cve
            obj["description"] = description or cve
            obj["external_references"] = [{"source_name": "cve", "external_id": cve}]
            self.add(obj)
        return ident

    def relationship(self, source: str, kind: str, target: str) -> str:
        ident = self._sdo_id("relationship", source, kind, target)
        obj = self._common("relationship", ident)
        obj.update({"relationship_type": kind, "source_ref": source, "target_ref": target})
        return self.add(obj)

    def indicator(self, ind: Indicator) -> str | None:
        if ind.type == "cve":
            return self.vulnerability(ind.value, ind.description)
        if ind.type == "attack-technique":
            return self.attack_pattern(AttackRef(ind.value))
        pattern = pattern_for(ind.type, ind.value)
        if pattern is None:
            self.skipped.append(f"indicator {ind.type} {ind.value!r}: no STIX pattern for this type")
            return None
        ident = self._sdo_id("indicator", ind.type, ind.value)
        obj = self._common("indicator", ident, stamp(ind.first_seen), stamp(ind.last_seen))
        obj.update({
            "name": f"{ind.type} {ind.value}", "description": ind.description or f"{ind.type} seen in healthcare",
            "indicator_types": ["malicious-activity"], "pattern": pattern, "pattern_type": "stix",
            "pattern_version": "2.1", "valid_from": stamp_any(ind.first_seen), "confidence": ind.confidence,
        })
        if ind.labels:
            obj["labels"] = list(ind.labels)
        self.add(obj)
        for technique in ind.techniques:
            self.relationship(ident, "indicates", self.attack_pattern(AttackRef(technique)))
        return ident

    def alert(self, alert: Alert, alert_id: str | None = None) -> list[str]:
        """Observed data of the alert's public observables and a sighting of each ATT&CK technique
        (`alert_id`: `alert.id` when the caller has it; it is a hash of the alert's events)."""
        alert_id = alert_id or alert.id
        when, when_any = stamp(alert.timestamp), stamp_any(alert.timestamp)
        scos = [i for i in (self.observable(k, v) for k, v in observables_of(alert.details)) if i]
        observed: list[str] = []
        count = max(1, len(alert.events))
        if scos:
            od = self._common("observed-data", self._sdo_id("observed-data", alert_id), when)
            od["first_observed"] = od["last_observed"] = when_any
            od["number_observed"] = count
            od["object_refs"] = scos
            observed.append(self.add(od))
        made = list(observed)
        for technique in alert.techniques:
            ap = self.attack_pattern(technique)
            sighting = self._common("sighting", self._sdo_id("sighting", alert_id, technique.id), when)
            sighting["description"] = f"{alert.title}: {alert.description}" if alert.description else alert.title
            sighting["first_seen"] = sighting["last_seen"] = when_any
            sighting["count"] = count
            sighting["sighting_of_ref"] = ap
            sighting["where_sighted_refs"] = [self.identity_id]
            sighting["confidence"] = _LEVEL_CONFIDENCE[alert.level]
            if observed:
                sighting["observed_data_refs"] = observed
            made.append(self.add(sighting))
        if not alert.techniques and observed:
            note = self._common("note", self._sdo_id("note", alert_id), when)
            note.update({"abstract": alert.title, "content": alert.description or alert.title,
                         "object_refs": observed})
            made.append(self.add(note))
        if not made:
            self.skipped.append(f"alert {alert_id}: no ATT&CK technique and no public observable to share")
        return made

    def finding(self, finding: Finding, asset: Asset | None) -> list[str]:
        """The vulnerability, the device model it affects (a note), and the remediation (course of action)."""
        if not finding.cve:
            self.skipped.append(f"finding {finding.advisory_id}: no CVE")
            return []
        vuln = self.vulnerability(finding.cve, f"{finding.cve} (advisory {finding.advisory_id})")
        made = [vuln]
        model = " ".join(p for p in (asset.vendor, asset.product, asset.version) if p) if asset else ""
        score = (f"; CVSS {finding.cvss_version} {finding.cvss_score} {finding.cvss_vector}"
                 if finding.cvss_score is not None else "")
        note_id = self._sdo_id("note", "finding", finding.cve, finding.advisory_id, model)
        if note_id not in self.objects:
            note = self._common("note", note_id)
            note.update({
                "abstract": f"{finding.cve} affects {model or 'a device model we run'}",
                "content": (f"Advisory {finding.advisory_id}: {finding.cve} {finding.status} "
                            f"{('on ' + model) if model else ''}{score}").strip(),
                "object_refs": [vuln],
            })
            made.append(self.add(note))
        if finding.remediation:
            coa_id = self._sdo_id("course-of-action", finding.cve, finding.remediation)
            if coa_id not in self.objects:
                coa = self._common("course-of-action", coa_id)
                coa.update({"name": f"Remediation of {finding.cve}", "description": finding.remediation})
                self.add(coa)
                made.append(coa_id)
                made.append(self.relationship(coa_id, "mitigates", vuln))
        return made

    def incident(self, key: str, name: str, created: datetime, determination: str = "suspected",
                 investigation_status: str = "new", criticality: int | None = None,
                 other_object_refs: Iterable[str] = (), description: str = "") -> str:
        """An incident with the incident-core extension (cti-stix-common-objects); for issue 6's Incident."""
        ident = self._sdo_id("incident", key)
        obj = self._common("incident", ident, stamp(created))
        ext: dict[str, Any] = {"extension_type": "property-extension", "determination": determination,
                               "investigation_status": investigation_status}
        if criticality is not None:
            ext["criticality"] = criticality
        refs = [r for r in other_object_refs if r in self.objects]
        if refs:
            ext["other_object_refs"] = refs
        obj.update({"name": name, "description": description or name,
                    "extensions": {INCIDENT_CORE_EXTENSION: ext}})
        return self.add(obj)

    def incident_record(self, incident: Mapping[str, Any], made_by_alert: Mapping[str, list[str]]) -> str:
        """An Incident (its `as_dict()` document, as the store keeps it) as an incident-core incident that refers to
        what its alerts became (sightings, observed data) and to its ATT&CK techniques."""
        state = str(incident.get("state", "new"))
        determination = ("false-positive" if state == "false-positive" else
                         "confirmed" if state in {"contained", "eradicated", "recovered", "closed"} else "suspected")
        status = "new" if state == "new" else "closed" if state in {"closed", "false-positive", "recovered"} else "open"
        refs: list[str] = []
        for alert_id in incident.get("alert_ids", []) or []:
            refs.extend(made_by_alert.get(str(alert_id), []))
        techniques = sorted(str(t) for t in incident.get("techniques", []) or [])
        refs.extend(self.attack_pattern(AttackRef(t)) for t in techniques)
        first = datetime.fromisoformat(str(incident["first_seen"]))
        last = datetime.fromisoformat(str(incident.get("last_seen") or incident["first_seen"]))
        severity = int(incident.get("severity", 0) or 0)
        description = (f"Stage {incident.get('stage', 'unknown')}, severity {severity}/4, "
                       f"{len(incident.get('alert_ids', []) or [])} alerts"
                       + (f"; techniques {', '.join(techniques)}" if techniques else ""))
        ident = self.incident(str(incident["id"]), str(incident.get("title") or "Incident"), first,
                              determination=determination, investigation_status=status,
                              criticality=max(0, min(100, severity * 25)), other_object_refs=list(dict.fromkeys(refs)),
                              description=description)
        self.objects[ident]["modified"] = stamp(max(first, last))
        return ident

    def report(self, name: str) -> str | None:
        refs = [i for i in self.objects if i != self.identity_id]
        if not refs:
            return None
        ident = random_id("report")
        obj = self._common("report", ident)
        obj.update({"name": name, "description": name, "report_types": ["threat-report"],
                    "published": self._now_any, "object_refs": refs})
        return self.add(obj)

    def bundle(self) -> dict[str, Any]:
        return {"type": "bundle", "id": random_id("bundle"), "objects": [*self.markings, *self.objects.values()]}


def build_bundle(ctx: ExportContext, *, alerts: Iterable[Alert] = (), findings: Iterable[Finding] = (),
                 assets: Mapping[str, Asset] | None = None, indicators: Iterable[Indicator] = (),
                 incidents: Iterable[Mapping[str, Any]] = (),
                 report_name: str = "") -> tuple[dict[str, Any], list[str]]:
    """The bundle of the records (plus one report listing them) and the notes on what was skipped.

    `incidents` are Incident documents (`Incident.as_dict()`, as the store keeps them)."""
    builder = BundleBuilder(ctx)
    assets = assets or {}
    for ind in indicators:
        builder.indicator(ind)
    made_by_alert: dict[str, list[str]] = {}
    for alert in alerts:
        alert_id = alert.id
        made_by_alert[alert_id] = builder.alert(alert, alert_id)
    for incident in incidents:
        builder.incident_record(incident, made_by_alert)
    for finding in findings:
        builder.finding(finding, assets.get(finding.asset_id))
    builder.report(report_name or f"healthswarm intelligence {stamp(ctx.now)[:10]}")
    return builder.bundle(), builder.skipped


def reference_bundle(bundle: Mapping[str, Any]) -> dict[str, Any]:
    """The bundle rebuilt object by object through the `stix2` package (the slow reference path)."""
    import json

    import stix2

    objects = [stix2.parse(dict(obj), allow_custom=True, version="2.1") for obj in bundle["objects"]]
    made = stix2.Bundle(objects=objects, id=bundle["id"], allow_custom=True)
    return json.loads(made.serialize())
