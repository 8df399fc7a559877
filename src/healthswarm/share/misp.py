"""MISP feed exchange: write a sanitised bundle as a MISP feed, read a MISP feed as indicators.

A MISP feed is a folder: `manifest.json` (event uuid → the event's summary: info, Orgc, date,
timestamp, analysis, threat level, tags), one `<uuid>.json` per event ({"Event": {..., "Attribute":
[...]}}) and `hashes.csv` (the MD5 of each attribute value, with its event uuid, for quick lookups).
TLP and PAP travel as tags (`tlp:amber`, `PAP:GREEN`); ATT&CK techniques as the MITRE ATT&CK galaxy
tag (`misp-galaxy:mitre-attack-pattern="<name> - T1059"`). A feed is written only from a bundle that
has been sanitised and leak-checked (what `share export` produces), so it carries nothing more.
"""

from __future__ import annotations

import hashlib
import json
import re
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from healthswarm.errors import InputError, Location, Problem
from healthswarm.model import Indicator
from healthswarm.share.markings import pap_of, tlp_of
from healthswarm.share.patterns import parse_simple

if TYPE_CHECKING:  # the gate makes the releases written here (and imports this module to derive events)
    from healthswarm.share.egress import Released

MISP_NAMESPACE = uuid.UUID("6f3c9a8e-2b1d-4f57-9e0a-3c4d5e6f7a8b")

# our indicator type -> (MISP attribute type, category)
TO_MISP: dict[str, tuple[str, str]] = {
    "ipv4": ("ip-dst", "Network activity"), "ipv6": ("ip-dst", "Network activity"),
    "domain": ("domain", "Network activity"), "url": ("url", "Network activity"),
    "email": ("email-src", "Payload delivery"), "md5": ("md5", "Payload delivery"),
    "sha1": ("sha1", "Payload delivery"), "sha256": ("sha256", "Payload delivery"),
    "sha512": ("sha512", "Payload delivery"), "filename": ("filename", "Payload delivery"),
    "user-agent": ("user-agent", "Network activity"), "mutex": ("mutex", "Artifacts dropped"),
    "registry-key": ("regkey", "Persistence mechanism"), "cve": ("vulnerability", "External analysis"),
    "ja3": ("ja3-fingerprint-md5", "Network activity"),
}
FROM_MISP: dict[str, str] = {
    "ip-dst": "ip", "ip-src": "ip", "ip-dst|port": "ip", "ip-src|port": "ip", "domain|ip": "domain",
    "domain": "domain", "hostname": "domain", "url": "url", "link": "url",
    "email-src": "email", "email-dst": "email", "email": "email", "md5": "md5", "sha1": "sha1", "sha256": "sha256",
    "sha512": "sha512", "filename": "filename", "user-agent": "user-agent", "mutex": "mutex", "regkey": "registry-key",
    "vulnerability": "cve", "ja3-fingerprint-md5": "ja3",
}
_GALAXY = re.compile(r'^misp-galaxy:mitre-(?:enterprise-|ics-)?attack-pattern="(?:.*? - )?(T\d{4}(?:\.\d{3})?)"$')
_TLP_TAG = re.compile(r"^tlp:(clear|white|green|amber\+strict|amber|red)$", re.I)
_PAP_TAG = re.compile(r"^pap:(clear|white|green|amber|red)$", re.I)


def _external_id(obj: dict[str, Any], source: str) -> str | None:
    for ref in obj.get("external_references", []) or []:
        if ref.get("source_name") == source and ref.get("external_id"):
            return str(ref["external_id"])
    return None


def _epoch(stamp: str) -> str:
    return str(int(datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()))


def feed_from_bundle(bundle: dict[str, Any], info: str = "") -> tuple[str, dict[str, Any]]:
    """(event uuid, MISP event) of a sanitised bundle: its indicators, CVEs, and ATT&CK techniques as tags."""
    objects = bundle.get("objects", [])
    identity = next((o for o in objects if o.get("type") == "identity"), {})
    report = next((o for o in objects if o.get("type") == "report"), {})
    event_uuid = bundle["id"].split("--", 1)[1]
    markings = sorted({m for o in objects for m in o.get("object_marking_refs", [])})
    tlp, pap = tlp_of(markings) or "amber", pap_of(markings)
    created = report.get("created") or identity.get("created") or datetime.now(UTC).isoformat()
    tags = [{"name": f"tlp:{tlp}"}] + ([{"name": f"PAP:{pap.upper()}"}] if pap else [])
    for obj in objects:
        technique = _external_id(obj, "mitre-attack") if obj.get("type") == "attack-pattern" else None
        if technique:
            name = obj.get("name", technique)
            tags.append({"name": f'misp-galaxy:mitre-attack-pattern="{name} - {technique}"'
                         if name != technique else f'misp-galaxy:mitre-attack-pattern="{technique}"'})
    attributes = []
    for obj in objects:
        kind_value: tuple[str, str] | None = None
        if obj.get("type") == "indicator" and obj.get("pattern_type") == "stix":
            kind_value = parse_simple(obj.get("pattern", ""))
        elif obj.get("type") == "vulnerability":
            cve = _external_id(obj, "cve")
            kind_value = ("cve", cve) if cve else None
        if kind_value is None or kind_value[0] not in TO_MISP:
            continue
        misp_type, category = TO_MISP[kind_value[0]]
        attribute = {
            "uuid": str(uuid.uuid5(MISP_NAMESPACE, f"{event_uuid}\x00{misp_type}\x00{kind_value[1]}")),
            "type": misp_type, "category": category, "value": kind_value[1],
            "to_ids": obj.get("type") == "indicator", "timestamp": _epoch(obj.get("modified", created)),
            "comment": str(obj.get("name", ""))[:200], "distribution": "5",
        }
        if obj.get("type") == "indicator" and obj.get("valid_from"):
            attribute["first_seen"] = obj["valid_from"]
            attribute["last_seen"] = obj.get("modified", obj["valid_from"])
        attributes.append(attribute)
    event = {
        "uuid": event_uuid, "info": info or report.get("name") or "healthswarm intelligence",
        "date": created[:10], "timestamp": _epoch(created), "publish_timestamp": _epoch(created), "published": True,
        "analysis": "2", "threat_level_id": "2", "distribution": "3",
        "Orgc": {"name": identity.get("name", "healthswarm"), "uuid": str(identity.get("id", "x--" + event_uuid))
                 .split("--", 1)[1]},
        "Tag": tags, "Attribute": attributes,
    }
    return event_uuid, {"Event": event}


def write_feed(folder: Path, released: Released) -> int:
    """Add an event the egress gate released to the feed in `folder` (manifest, event file, hashes.csv)."""
    event_uuid, document = released.require("misp").payload
    event = document["Event"]
    folder.mkdir(parents=True, exist_ok=True)
    manifest_path = folder / "manifest.json"
    manifest = json.loads(manifest_path.read_text(encoding="utf-8")) if manifest_path.exists() else {}
    (folder / f"{event_uuid}.json").write_text(json.dumps(document, indent=1) + "\n", encoding="utf-8")
    manifest[event_uuid] = {k: event[k] for k in ("info", "Orgc", "analysis", "threat_level_id", "timestamp",
                                                  "date", "Tag", "publish_timestamp")}
    hashes = [f"{hashlib.md5(a['value'].encode()).hexdigest()},{event_uuid}"  # MD5: what the feed format uses
              for a in event["Attribute"]]
    manifest_path.write_text(json.dumps(manifest, indent=1) + "\n", encoding="utf-8")
    with (folder / "hashes.csv").open("a", encoding="utf-8") as handle:
        handle.writelines(line + "\n" for line in hashes)
    return 1


def _tags(items: Any) -> list[str]:
    return [str(t.get("name", "")) for t in items or [] if isinstance(t, dict)]


def _tlp(tags: list[str], default: str) -> str:
    for tag in tags:
        match = _TLP_TAG.match(tag)
        if match:
            level = match.group(1).lower()
            return "clear" if level == "white" else level
    return default


def _when(attribute: dict[str, Any], key: str, fallback: datetime) -> datetime:
    value = attribute.get(key)
    if value in (None, ""):
        return fallback
    text = str(value)
    if text.isdigit():
        return datetime.fromtimestamp(int(text), UTC)
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)


def read_feed(folder: Path) -> list[Indicator]:
    """Indicators of every event of a MISP feed; InputError naming the file and field of each problem."""
    manifest_path = folder / "manifest.json"
    problems: list[Problem] = []
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise InputError(Problem(Location(str(manifest_path)), "missing", "a MISP feed folder")) from exc
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InputError(Problem(Location(str(manifest_path)), f"not valid JSON: {exc}")) from exc
    if not isinstance(manifest, dict):
        raise InputError(Problem(Location(str(manifest_path)), "not an object", "{event uuid: summary}"))
    out: list[Indicator] = []
    for event_uuid in manifest:
        path = folder / f"{event_uuid}.json"
        try:
            event = json.loads(path.read_text(encoding="utf-8"))["Event"]
        except FileNotFoundError:
            problems.append(Problem(Location(str(path)), "listed in manifest.json but missing"))
            continue
        except (json.JSONDecodeError, UnicodeDecodeError, KeyError, TypeError) as exc:
            problems.append(Problem(Location(str(path)), f"not a MISP event: {exc}", '{"Event": {...}}'))
            continue
        event_tags = _tags(event.get("Tag"))
        event_tlp = _tlp(event_tags, "amber")
        pap = next((m.group(1).lower() for t in event_tags if (m := _PAP_TAG.match(t))), None)
        techniques = tuple(m.group(1) for t in event_tags if (m := _GALAXY.match(t)))
        org = event.get("Orgc", {}) if isinstance(event.get("Orgc"), dict) else {}
        stamp = _when(event, "timestamp", datetime.now(UTC))
        for index, attribute in enumerate(event.get("Attribute", []) or []):
            where = Location(str(path), field=f"Event.Attribute[{index}]")
            kind = FROM_MISP.get(str(attribute.get("type", "")))
            if kind is None:
                continue  # MISP has ~200 attribute types; the others are not indicators we use
            value = str(attribute.get("value", "")).split("|", 1)[0]  # composite types: the first part
            if kind == "ip":
                kind = "ipv6" if ":" in value else "ipv4"
            try:
                first = _when(attribute, "first_seen", _when(attribute, "timestamp", stamp))
                last = max(first, _when(attribute, "last_seen", _when(attribute, "timestamp", stamp)))
                out.append(Indicator(
                    value=value, type=kind, first_seen=first, last_seen=last, confidence=50,
                    source=f"misp:{org.get('uuid', '')}", tlp=_tlp(_tags(attribute.get("Tag")), event_tlp),
                    description=str(attribute.get("comment", ""))[:2000], techniques=techniques,
                    extra={"misp_event": event_uuid, "misp_attribute": attribute.get("uuid", ""),
                           **({"pap": pap} if pap else {})}))
            except (ValueError, OverflowError) as exc:
                problems.append(Problem(where, str(exc)))
    if problems:
        raise InputError(problems)
    return out
