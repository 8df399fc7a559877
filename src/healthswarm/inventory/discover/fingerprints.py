"""Fingerprints: what an endpoint's announcements say about its vendor, model and version.

Fingerprints are data, not code: YAML files, one per vendor family, in `discover/fingerprints/`
(shipped) and in any folder given with `--fingerprints` or placed in the workspace's `fingerprints/`.
A file:

    family: B. Braun infusion systems       # shown with every conclusion it draws
    vendor: B. Braun Medical                 # default for its rules (the inventory's vendor spelling)
    source: where the patterns come from
    rules:
      - signal: http.user_agent              # one of SIGNALS
        pattern: '^SpaceCom/(?P<version>[\\w.]+)'   # a regular expression, searched case-insensitively;
        product: SpaceStation with SpaceCom 2       #   named groups `version` / `product` fill those
        kind: infusion-pump                  # an inventory asset kind (optional)
        confidence: 0.8                      # how sure one match makes us (0 < c <= 1)
        examples: ['SpaceCom/L81 (B. Braun)']  # must match: checked when the file is loaded

Each match is evidence (signal, value seen, rule, confidence). Matches that agree are combined as
independent evidence, 1 - Π(1 - c); the vendor with the most combined confidence wins, then its
product, version and kind. Disagreeing vendors are kept as alternatives.

MAC addresses are turned into the IEEE registrant of their OUI by `netaddr`, which ships the IEEE
table (no download at run time); rules with `signal: mac.vendor` map registrants to vendors.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

from healthswarm.errors import InputError, Location, Problem
from healthswarm.inventory.advisories.products import vendor_keys
from healthswarm.model import ASSET_KINDS

BUILTIN = Path(__file__).resolve().parent / "fingerprints"

SIGNALS = frozenset({
    "http.user_agent", "ssh.banner", "tls.ja3", "tls.ja4", "tls.ja3s", "dhcp.vendor_class", "dhcp.hostname",
    "host.name", "dicom.ae_title", "dicom.implementation_version_name", "dicom.implementation_class_uid",
    "hl7.sending_application", "mqtt.client_id", "software", "service", "mac.vendor",
})
_FILE_FIELDS = frozenset({"family", "vendor", "source", "rules", "description"})
_RULE_FIELDS = frozenset({"signal", "pattern", "vendor", "product", "version", "kind", "confidence", "examples",
                          "note"})
_Loader: type = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


@dataclass(frozen=True)
class Rule:
    family: str
    signal: str
    pattern: re.Pattern[str]
    vendor: str
    product: str = ""
    version: str = ""
    kind: str = ""
    confidence: float = 0.5
    where: str = ""  # file:line, for the evidence

    def apply(self, value: str) -> Match | None:
        m = self.pattern.search(value)
        if m is None:
            return None
        groups = m.groupdict()
        version = (groups.get("version") or self.version or "").strip()
        product = (groups.get("product") or self.product or "").strip()
        return Match(self, value, product, version)


@dataclass(frozen=True)
class Match:
    rule: Rule
    value: str
    product: str
    version: str

    def evidence(self) -> dict[str, Any]:
        out: dict[str, Any] = {"signal": self.rule.signal, "value": self.value, "family": self.rule.family,
                               "vendor": self.rule.vendor, "confidence": self.rule.confidence,
                               "rule": self.rule.where}
        if self.product:
            out["product"] = self.product
        if self.version:
            out["version"] = self.version
        if self.rule.kind:
            out["kind"] = self.rule.kind
        return out


@dataclass
class Conclusion:
    """What the evidence says about one endpoint, and how sure it is."""

    vendor: str = ""
    product: str = ""
    version: str = ""
    kind: str = ""
    confidence: float = 0.0
    version_confidence: float = 0.0
    evidence: list[dict[str, Any]] = field(default_factory=list)
    alternatives: list[dict[str, Any]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {"vendor": self.vendor, "product": self.product, "version": self.version, "kind": self.kind,
                "confidence": round(self.confidence, 3), "version_confidence": round(self.version_confidence, 3),
                "evidence": self.evidence, "alternatives": self.alternatives}


def _combine(confidences: Iterable[float]) -> float:
    miss = 1.0
    for c in confidences:
        miss *= 1.0 - c
    return 1.0 - miss


class Fingerprints:
    def __init__(self, rules: Sequence[Rule], files: Sequence[str] = ()) -> None:
        self.rules = list(rules)
        self.files = list(files)
        self.by_signal: dict[str, list[Rule]] = defaultdict(list)
        for rule in self.rules:
            self.by_signal[rule.signal].append(rule)
        self._memo: dict[tuple[str, str], list[Match]] = {}

    @property
    def families(self) -> list[str]:
        return sorted({r.family for r in self.rules})

    def matches(self, signal: str, value: str) -> list[Match]:
        key = (signal, value)
        hit = self._memo.get(key)
        if hit is None:
            hit = [m for r in self.by_signal.get(signal, ()) if (m := r.apply(value)) is not None]
            if len(self._memo) < 200_000:
                self._memo[key] = hit
        return hit

    def conclude(self, signals: dict[str, Iterable[str]], prefer_vendor: str = "") -> Conclusion | None:
        """The conclusion drawn from an endpoint's announcements (signal kind → values), or None.

        `prefer_vendor` (the inventory's vendor of a declared asset): when some evidence names that
        vendor, the conclusion is about it (a pump's embedded Linux does not outvote the pump)."""
        found: list[Match] = []
        for signal, values in signals.items():
            for value in values:
                found.extend(self.matches(signal, value))
        if not found:
            return None
        by_vendor: dict[str, list[Match]] = defaultdict(list)
        for m in found:
            by_vendor[m.rule.vendor].append(m)
        scored = sorted(((_combine(m.rule.confidence for m in ms), vendor) for vendor, ms in by_vendor.items()),
                        reverse=True)
        confidence, vendor = scored[0]
        if prefer_vendor:
            wanted = set(vendor_keys(prefer_vendor))
            preferred = [(c, v) for c, v in scored if wanted & set(vendor_keys(v))]
            if preferred:
                confidence, vendor = preferred[0]
                scored = [preferred[0], *(s for s in scored if s != preferred[0])]
        mine = by_vendor[vendor]
        conclusion = Conclusion(vendor=vendor, confidence=confidence,
                                evidence=[m.evidence() for m in sorted(mine, key=lambda m: -m.rule.confidence)])
        conclusion.alternatives = [{"vendor": v, "confidence": round(c, 3)} for c, v in scored[1:]]
        products: dict[str, list[float]] = defaultdict(list)
        for m in mine:
            if m.product:
                products[m.product].append(m.rule.confidence)
        if products:
            conclusion.product = max(products, key=lambda p: (_combine(products[p]), p))
        versions: dict[str, list[float]] = defaultdict(list)
        for m in mine:
            if m.version and (not m.product or m.product == conclusion.product):
                versions[m.version].append(m.rule.confidence)
        if versions:
            conclusion.version = max(versions, key=lambda v: (_combine(versions[v]), v))
            conclusion.version_confidence = _combine(versions[conclusion.version])
        kinds: dict[str, list[float]] = defaultdict(list)
        for m in mine:
            if m.rule.kind and (not m.product or m.product == conclusion.product):
                kinds[m.rule.kind].append(m.rule.confidence)
        if kinds:
            conclusion.kind = max(kinds, key=lambda k: (_combine(kinds[k]), k))
        return conclusion


@lru_cache(maxsize=65_536)
def oui_vendor(mac: str) -> str | None:
    """The IEEE registrant of a MAC address's OUI (netaddr's bundled table), or None."""
    try:
        first = int(mac[:2], 16)
    except ValueError:
        return None
    if first & 0x02:  # locally administered (randomised phones, VMs): no registrant
        return None
    try:
        from netaddr import EUI
        from netaddr.core import NotRegisteredError
    except ImportError:  # pragma: no cover - a declared dependency
        return None
    try:
        return str(EUI(mac).oui.registration().org).strip() or None
    except (NotRegisteredError, ValueError, IndexError, TypeError):
        return None
    except Exception:
        return None


# --- loading ----------------------------------------------------------------------------------------------

def _where(path: Path, node: yaml.Node) -> Location:
    return Location(str(path), node.start_mark.line + 1)


def _scalar(node: yaml.Node) -> str | None:
    return str(node.value) if isinstance(node, yaml.ScalarNode) and not node.tag.endswith(":null") else None


def _read(path: Path, problems: list[Problem]) -> list[Rule]:
    try:
        root = yaml.compose(path.read_text(encoding="utf-8"), Loader=_Loader)
    except (OSError, UnicodeDecodeError) as exc:
        problems.append(Problem(Location(str(path)), f"cannot be read: {exc}", "a UTF-8 YAML file"))
        return []
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        problems.append(Problem(Location(str(path), mark.line + 1 if mark else None),
                                f"malformed YAML: {exc.problem or exc}", "well-formed YAML"))
        return []
    if not isinstance(root, yaml.MappingNode):
        problems.append(Problem(Location(str(path), 1), "not a mapping", "family, vendor, rules"))
        return []
    top = {k.value: v for k, v in root.value}
    for k, _ in root.value:
        if k.value not in _FILE_FIELDS:
            problems.append(Problem(_where(path, k), f"unknown field {k.value!r}", ", ".join(sorted(_FILE_FIELDS))))
    family = _scalar(top["family"]) if "family" in top else None
    if not family:
        problems.append(Problem(Location(str(path), 1), "missing 'family'", "the vendor family's name"))
        family = path.stem
    default_vendor = _scalar(top["vendor"]) if "vendor" in top else ""
    rules_node = top.get("rules")
    if not isinstance(rules_node, yaml.SequenceNode):
        problems.append(Problem(Location(str(path), 1), "missing or non-list 'rules'", "a list of rules"))
        return []
    rules = []
    for item in rules_node.value:
        rule = _read_rule(path, item, family, default_vendor or "", problems)
        if rule is not None:
            rules.append(rule)
    return rules


def _read_rule(path: Path, item: yaml.Node, family: str, default_vendor: str,
               problems: list[Problem]) -> Rule | None:
    where = _where(path, item)
    if not isinstance(item, yaml.MappingNode):
        problems.append(Problem(where, "a rule is not a mapping", "signal, pattern, vendor, product, ..."))
        return None
    fields = {k.value: v for k, v in item.value}
    bad = False
    for k, _ in item.value:
        if k.value not in _RULE_FIELDS:
            problems.append(Problem(_where(path, k), f"unknown rule field {k.value!r}",
                                    ", ".join(sorted(_RULE_FIELDS))))
            bad = True
    signal = _scalar(fields["signal"]) if "signal" in fields else None
    if signal not in SIGNALS:
        problems.append(Problem(where, f"signal {signal!r}", "one of " + ", ".join(sorted(SIGNALS))))
        bad = True
    text = _scalar(fields["pattern"]) if "pattern" in fields else None
    pattern = None
    if not text:
        problems.append(Problem(where, "missing 'pattern'", "a regular expression"))
        bad = True
    else:
        try:
            pattern = re.compile(text, re.IGNORECASE)
        except re.error as exc:
            problems.append(Problem(_where(path, fields["pattern"]), f"bad regular expression: {exc}",
                                    "a Python regular expression"))
            bad = True
    vendor = (_scalar(fields["vendor"]) if "vendor" in fields else None) or default_vendor
    if not vendor:
        problems.append(Problem(where, "no vendor (neither the rule's nor the file's)", "a vendor name"))
        bad = True
    kind = (_scalar(fields["kind"]) if "kind" in fields else None) or ""
    if kind and kind not in ASSET_KINDS:
        problems.append(Problem(_where(path, fields["kind"]), f"unknown asset kind {kind!r}", "an inventory kind"))
        bad = True
    confidence = 0.5
    if "confidence" in fields:
        try:
            confidence = float(_scalar(fields["confidence"]) or "")
        except ValueError:
            confidence = -1.0
        if not 0 < confidence <= 1:
            problems.append(Problem(_where(path, fields["confidence"]), "confidence out of range",
                                    "a number in (0, 1]"))
            bad = True
    if bad or pattern is None or signal is None:
        return None
    rule = Rule(family, signal, pattern, vendor, (_scalar(fields["product"]) if "product" in fields else "") or "",
                (_scalar(fields["version"]) if "version" in fields else "") or "", kind, confidence,
                f"{path.name}:{where.line}")
    examples = fields.get("examples")
    if isinstance(examples, yaml.SequenceNode):
        for example in examples.value:
            value = _scalar(example)
            if value is not None and rule.apply(value) is None:
                problems.append(Problem(_where(path, example), f"example {value!r} does not match the pattern",
                                        "examples the rule recognises"))
    return rule


def fingerprint_files(folders: Iterable[Path]) -> list[Path]:
    out: list[Path] = []
    for folder in folders:
        if folder.is_file():
            out.append(folder)
        elif folder.is_dir():
            out.extend(sorted(p for p in folder.iterdir() if p.suffix in (".yaml", ".yml")))
    return out


def load_fingerprints(extra: Iterable[Path] = (), builtin: bool = True) -> Fingerprints:
    """The shipped fingerprints plus those in `extra` (files or folders); InputError lists every problem."""
    folders = ([BUILTIN] if builtin else []) + list(extra)
    files = fingerprint_files(folders)
    problems: list[Problem] = []
    rules: list[Rule] = []
    for path in files:
        rules.extend(_read(path, problems))
    if problems:
        raise InputError(problems)
    return Fingerprints(rules, [str(p) for p in files])


def rule_examples(files: Iterable[Path]) -> list[tuple[str, str, str, str, str]]:
    """(signal, example value, vendor, product, pattern) of every rule: the traffic simulator announces these."""
    out = []
    for path in files:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        for rule in data.get("rules") or []:
            for example in rule.get("examples") or []:
                out.append((rule["signal"], str(example), rule.get("vendor") or data.get("vendor") or "",
                            rule.get("product") or "", rule["pattern"]))
    return out
