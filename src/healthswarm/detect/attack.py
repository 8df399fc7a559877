"""MITRE ATT&CK names for the ids detectors carry: techniques (`T1059.001`) and tactics (`TA0002`, `execution`).

The STIX bundles (`enterprise-attack.json`, `ics-attack.json`) are large, so they are read once, on
first use, into a small table. Without the data, references keep their ids and have empty names.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from healthswarm.model import AttackRef

BUNDLES = ("enterprise-attack.json", "ics-attack.json")
#: Tactic short names Sigma tags use, including ones newer than a given ATT&CK bundle (kept as ids then).
KNOWN_TACTICS = frozenset({
    "reconnaissance", "resource-development", "initial-access", "execution", "persistence", "privilege-escalation",
    "defense-evasion", "stealth", "defense-impairment", "credential-access", "discovery", "lateral-movement",
    "collection", "command-and-control", "exfiltration", "impact", "evasion", "inhibit-response-function",
    "impair-process-control",
})
_TECHNIQUE = re.compile(r"^t\d{4}(\.\d{3})?$", re.IGNORECASE)


def default_attack_dir() -> Path:
    """`HEALTHSWARM_ATTACK_DATA`, else `../shared/data/attack` beside the checkout or the working folder."""
    env = os.environ.get("HEALTHSWARM_ATTACK_DATA")
    if env:
        return Path(env)
    here = Path(__file__).resolve()
    for base in (*here.parents, Path.cwd(), *Path.cwd().parents):
        candidate = base.parent / "shared" / "data" / "attack"
        if candidate.is_dir():
            return candidate
    return Path("attack")


@dataclass
class AttackCatalog:
    """Technique and tactic names by id, tactic ids by short name, and each technique's tactics."""

    techniques: dict[str, str] = field(default_factory=dict)
    tactics: dict[str, tuple[str, str]] = field(default_factory=dict)  # TA id → (name, shortname)
    tactic_by_shortname: dict[str, str] = field(default_factory=dict)
    technique_tactics: dict[str, tuple[str, ...]] = field(default_factory=dict)  # T id → shortnames
    loaded_from: tuple[str, ...] = ()

    @classmethod
    def load(cls, directory: Path | None = None) -> AttackCatalog:
        directory = directory or default_attack_dir()
        catalog = cls()
        sources = []
        for name in BUNDLES:
            path = directory / name
            if not path.is_file():
                continue
            try:
                bundle = json.loads(path.read_bytes())
            except (OSError, ValueError):
                continue
            sources.append(str(path))
            catalog._add(bundle.get("objects", []))
        catalog.loaded_from = tuple(sources)
        return catalog

    def _add(self, objects: Iterable[dict]) -> None:
        for obj in objects:
            kind = obj.get("type")
            if kind not in ("attack-pattern", "x-mitre-tactic") or obj.get("revoked"):
                continue
            ext = next((r.get("external_id") for r in obj.get("external_references", [])
                        if r.get("source_name") in ("mitre-attack", "mitre-ics-attack") and r.get("external_id")), None)
            if not ext:
                continue
            if kind == "attack-pattern":
                if ext in self.techniques and obj.get("x_mitre_deprecated"):
                    continue
                self.techniques[ext] = obj.get("name", "")
                self.technique_tactics[ext] = tuple(p["phase_name"] for p in obj.get("kill_chain_phases", [])
                                                    if "phase_name" in p)
            else:
                short = obj.get("x_mitre_shortname", "")
                self.tactics[ext] = (obj.get("name", ""), short)
                self.tactic_by_shortname.setdefault(short, ext)

    def technique(self, tid: str) -> AttackRef:
        tid = tid.upper()
        return AttackRef(tid, self.techniques.get(tid, ""))

    def tactic(self, key: str) -> AttackRef:
        """A tactic by id (`TA0002`) or Sigma-tag short name (`execution`, `credential_access`)."""
        if re.match(r"^ta\d{4}$", key, re.IGNORECASE):
            tid = key.upper()
        else:
            short = key.lower().replace("_", "-")
            tid = self.tactic_by_shortname.get(short, "")
            if not tid:
                return AttackRef(short, "", short)
        name, shortname = self.tactics.get(tid, ("", ""))
        return AttackRef(tid, name, shortname)

    def _is_tactic(self, value: str) -> bool:
        short = value.lower().replace("_", "-")
        return re.match(r"^ta\d{4}$", short) is not None or short in self.tactic_by_shortname or short in KNOWN_TACTICS

    def from_tags(self, tags: Iterable[str]) -> tuple[tuple[AttackRef, ...], tuple[AttackRef, ...]]:
        """(techniques, tactics) named by Sigma `attack.*` tags; when the tags name no tactic, the tactics of
        the techniques stand in."""
        techniques: list[AttackRef] = []
        tactics: list[AttackRef] = []
        for tag in tags:
            namespace, _, value = tag.partition(".")
            if namespace.lower() != "attack" or not value:
                continue
            if _TECHNIQUE.match(value):
                ref = self.technique(value)
                if ref not in techniques:
                    techniques.append(ref)
            elif self._is_tactic(value):
                ref = self.tactic(value)
                if ref not in tactics:
                    tactics.append(ref)
        if not tactics:
            for technique in techniques:
                for short in self.technique_tactics.get(technique.id, ()):
                    ref = self.tactic(short)
                    if ref not in tactics:
                        tactics.append(ref)
        return tuple(techniques), tuple(tactics)


_CATALOGS: dict[Path, AttackCatalog] = {}


def catalog(directory: Path | None = None) -> AttackCatalog:
    """The catalog for `directory` (default: the shared data), loaded once per process."""
    key = (directory or default_attack_dir()).resolve()
    if key not in _CATALOGS:
        _CATALOGS[key] = AttackCatalog.load(key)
    return _CATALOGS[key]
