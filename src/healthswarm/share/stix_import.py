"""Reading a peer's STIX 2.1 bundle: parse, validate (`stix2-validator`), then pick out what we use.

A bundle is accepted whole or not at all: any validator error, unknown object type or unparsable
object rejects it with every reason found (object id and the validator's message), so nothing is
stored half. Duplicate ids keep the newest `modified` version. Indicators with a one-comparison
STIX pattern, vulnerabilities (CVE) and attack patterns (ATT&CK ids) become `Indicator` records
carrying the TLP of their markings and the pseudonymous identity that created them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from healthswarm.errors import InputError, Location, Problem
from healthswarm.model import Indicator
from healthswarm.model.words import counted
from healthswarm.share.ids import parse_stamp
from healthswarm.share.markings import tlp_of
from healthswarm.share.patterns import parse_simple
from healthswarm.share.signing import strip_signature

MAX_BYTES = 64 * 1024 * 1024
MAX_OBJECTS = 200_000
# STIX 2.1 object types (objects of other types are refused as unknown)
KNOWN_TYPES = frozenset({
    "attack-pattern", "campaign", "course-of-action", "grouping", "identity", "incident", "indicator",
    "infrastructure", "intrusion-set", "location", "malware", "malware-analysis", "note", "observed-data",
    "opinion", "report", "threat-actor", "tool", "vulnerability", "relationship", "sighting",
    "artifact", "autonomous-system", "directory", "domain-name", "email-addr", "email-message", "file",
    "ipv4-addr", "ipv6-addr", "mac-addr", "mutex", "network-traffic", "process", "software", "url",
    "user-account", "windows-registry-key", "x509-certificate", "marking-definition", "language-content",
    "extension-definition",
})


@dataclass
class ImportResult:
    objects: list[dict[str, Any]]
    indicators: list[Indicator]
    warnings: list[str] = field(default_factory=list)
    superseded: int = 0

    def counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for obj in self.objects:
            out[obj["type"]] = out.get(obj["type"], 0) + 1
        return out


def read_json(path: Path) -> Any:
    """The parsed JSON of a file, or an InputError naming the line and column."""
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise InputError(Problem(Location(str(path)), f"cannot read: {exc.strerror}")) from exc
    if size > MAX_BYTES:
        raise InputError(Problem(Location(str(path)), f"{size} bytes is more than the {MAX_BYTES} accepted"))
    try:
        return json.loads(path.read_bytes())
    except UnicodeDecodeError as exc:
        raise InputError(Problem(Location(str(path)), "not UTF-8 text", "a JSON file")) from exc
    except json.JSONDecodeError as exc:
        raise InputError(Problem(Location(str(path), exc.lineno), f"not valid JSON: {exc.msg} (column {exc.colno})"
                                 )) from exc


def validate(bundle: Any, source: str = "<bundle>") -> list[str]:
    """Warnings of `stix2-validator`; raises InputError with every validator error."""
    from stix2validator import ValidationOptions, validate_parsed_json
    from stix2validator.errors import ValidationError

    if not isinstance(bundle, dict) or bundle.get("type") != "bundle":
        raise InputError(Problem(Location(source), "not a STIX bundle", 'a JSON object with "type": "bundle"'))
    objects = bundle.get("objects", [])
    if not isinstance(objects, list):
        raise InputError(Problem(Location(source, field="objects"), "not a list"))
    if len(objects) > MAX_OBJECTS:
        raise InputError(Problem(Location(source, field="objects"),
                                 f"{len(objects)} objects is more than the {MAX_OBJECTS} accepted"))
    try:
        results = validate_parsed_json(strip_signature(bundle), ValidationOptions())
    except ValidationError as exc:
        raise InputError(Problem(Location(source), f"STIX validation failed: {exc}")) from exc
    results = results if isinstance(results, list) else [results]
    problems: list[Problem] = []
    warnings: list[str] = []
    for result in results:
        for error in result.errors:
            problems.append(Problem(Location(source, field=result.object_id or None), str(error)))
        warnings.extend(str(w) for w in result.warnings)
    if problems:
        raise InputError(problems)
    return warnings


def _newest(objects: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], int]:
    chosen: dict[str, dict[str, Any]] = {}
    superseded = 0
    for obj in objects:
        ident = obj.get("id", "")
        current = chosen.get(ident)
        if current is None:
            chosen[ident] = obj
            continue
        superseded += 1
        if str(obj.get("modified", "")) > str(current.get("modified", "")):
            chosen[ident] = obj
    return list(chosen.values()), superseded


def _external_id(obj: dict[str, Any], source: str) -> str | None:
    for ref in obj.get("external_references", []) or []:
        if isinstance(ref, dict) and ref.get("source_name") == source and ref.get("external_id"):
            return str(ref["external_id"])
    return None


def indicators_of(objects: list[dict[str, Any]], default_tlp: str = "amber") -> list[Indicator]:
    """Indicator records from STIX indicators (simple patterns), vulnerabilities and attack patterns."""
    out: list[Indicator] = []
    now = datetime.now(UTC)
    for obj in objects:
        kind = obj.get("type")
        tlp = tlp_of(obj.get("object_marking_refs")) or default_tlp
        created = parse_stamp(obj["created"]) if "created" in obj else now
        modified = parse_stamp(obj["modified"]) if "modified" in obj else created
        common = {"source": obj.get("created_by_ref", ""), "tlp": tlp, "stix_id": obj.get("id", ""),
                  "description": str(obj.get("description", obj.get("name", "")))[:2000]}
        if kind == "indicator" and obj.get("pattern_type") == "stix":
            simple = parse_simple(obj.get("pattern", ""))
            if simple is None:
                continue
            first = parse_stamp(obj["valid_from"]) if "valid_from" in obj else created
            last = max(first, modified)
            confidence = obj.get("confidence", 50)
            out.append(Indicator(value=simple[1], type=simple[0], first_seen=first, last_seen=last,
                                 confidence=confidence if isinstance(confidence, int) else 50,
                                 labels=tuple(obj.get("labels", ())), **common))
        elif kind == "vulnerability":
            cve = _external_id(obj, "cve")
            if cve:
                out.append(Indicator(value=cve, type="cve", first_seen=created, last_seen=max(created, modified),
                                     **common))
        elif kind == "attack-pattern":
            technique = _external_id(obj, "mitre-attack")
            if technique:
                out.append(Indicator(value=technique, type="attack-technique", first_seen=created,
                                     last_seen=max(created, modified), **common))
    return out


def as_bundle(document: Any) -> tuple[Any, list[str]]:
    """A bundle as it is; a single STIX object or a list of them wrapped in one (with a warning)."""
    import uuid

    if isinstance(document, dict) and document.get("type") != "bundle" and isinstance(document.get("id"), str):
        document = [document]
    if isinstance(document, list) and all(isinstance(o, dict) for o in document):
        return ({"type": "bundle", "id": f"bundle--{uuid.uuid4()}", "objects": document},
                [f"{counted(len(document), 'bare STIX object')} wrapped in a bundle"])
    return document, []


def import_bundle(bundle: Any, source: str = "<bundle>", default_tlp: str = "amber") -> ImportResult:
    """Validate and parse a bundle; InputError (every reason, with object ids) when it is not acceptable."""
    import stix2
    from stix2.exceptions import STIXError

    bundle, wrapped = as_bundle(bundle)
    warnings = wrapped + validate(bundle, source)
    objects, superseded = _newest([o for o in bundle.get("objects", []) if isinstance(o, dict)])
    problems: list[Problem] = []
    for obj in objects:
        if obj.get("type") not in KNOWN_TYPES:
            problems.append(Problem(Location(source, field=str(obj.get("id", "?"))),
                                    f"unknown object type {obj.get('type')!r}", "a STIX 2.1 object type"))
            continue
        try:
            # custom properties are allowed (the validator has warned about them); custom types are not
            stix2.parse(obj, allow_custom=True, version="2.1")
        except (STIXError, ValueError, TypeError) as exc:
            problems.append(Problem(Location(source, field=str(obj.get("id", "?"))), str(exc).splitlines()[0]))
    if problems:
        raise InputError(problems)
    return ImportResult(objects, indicators_of(objects, default_tlp), warnings, superseded)
