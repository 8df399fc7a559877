"""Scoring the monitor on generated logs: per AuditEvent, was it flagged, and was it snooping?

An access counts as flagged when an alert of level `medium` or above lists it (`low` alerts, such as
break-the-glass reviews, are a review queue, not detections). Overall precision/recall/F1 are over all
reads; per pattern, recall is the share of that pattern's reads flagged by any rule, precision the share
of reads flagged by the pattern's own rule that are snooping of any kind.

The monitor sees only what a hospital has: the HL7 and FHIR text (through the parsers the caller passes
in, so generator → parser → detector is the real path), the care feed and the staff directory. It gets
none of the generator's parameters.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from healthswarm.detect.privacy.directory import parse_directory
from healthswarm.detect.privacy.generator import PATTERNS, GeneratedLog, GeneratorConfig, generate
from healthswarm.detect.privacy.monitor import PrivacyConfig, PrivacyMonitor
from healthswarm.model import LEVELS, Alert, Event

#: the monitor's rule that answers each generated pattern
RULE_OF = {"curiosity": "no-relationship", "coworker": "coworker", "family": "same-surname", "vip": "vip",
           "after-hours": "after-hours-burst", "bulk": "volume"}
#: (format name, text) → events; the caller binds the project's parsers (detect may not import ingest)
Parse = Callable[[str, bytes, str], Iterable[Event]]


@dataclass
class Score:
    overall: dict[str, float] = field(default_factory=dict)
    patterns: dict[str, dict[str, float]] = field(default_factory=dict)
    alerts: int = 0
    reads: int = 0


def prf(tp: int, fp: int, fn: int) -> dict[str, float]:
    precision = tp / (tp + fp) if tp + fp else 1.0
    recall = tp / (tp + fn) if tp + fn else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"precision": round(precision, 4), "recall": round(recall, 4), "f1": round(f1, 4),
            "tp": tp, "fp": fp, "fn": fn}


def events_of(log: GeneratedLog, parse: Parse) -> list[Event]:
    """The generated ADT and audit text through the parsers, in time order (as the detection stage reads)."""
    events = list(parse("hl7", log.hl7.encode(), "adt.hl7"))
    events += parse("fhir", "".join(line + "\n" for line in log.audit).encode(), "audit.ndjson")
    return sorted(events, key=lambda e: e.timestamp)


def run_monitor(log: GeneratedLog, events: list[Event], config: PrivacyConfig | None = None) -> list[Alert]:
    monitor = PrivacyMonitor(parse_directory(log.directory, "staff.yaml"), config)
    for resource in log.care:
        monitor.add_care(resource)
    alerts: list[Alert] = []
    for event in events:
        alerts += monitor.detect(event)
    return alerts + monitor.flush()


def score(log: GeneratedLog, alerts: list[Alert], min_level: str = "medium") -> Score:
    truth = {label["id"]: label["pattern"] for label in log.labels}
    threshold = LEVELS.index(min_level)
    flagged: set[str] = set()
    by_rule: dict[str, set[str]] = {}
    for alert in alerts:
        if alert.severity < threshold:
            continue
        ids = set(alert.details.get("audit_event_ids", []))
        flagged |= ids
        by_rule.setdefault(alert.rule_id.removeprefix("privacy:"), set()).update(ids)
    snoop = {i for i, p in truth.items() if p != "legit"}
    result = Score(alerts=len(alerts), reads=len(truth))
    result.overall = prf(len(flagged & snoop), len(flagged - snoop), len(snoop - flagged))
    for pattern in PATTERNS:
        mine = {i for i, p in truth.items() if p == pattern}
        rule = by_rule.get(RULE_OF[pattern], set())
        caught = len(mine & flagged)
        result.patterns[pattern] = {
            "reads": len(mine),
            "recall": round(caught / len(mine), 4) if mine else 1.0,
            "rule_precision": round(len(rule & snoop) / len(rule), 4) if rule else 1.0,
            "rule_flags": len(rule),
        }
    return result


def evaluate(seeds: Iterable[int], parse: Parse, days: int = 7, config: PrivacyConfig | None = None
             ) -> dict[str, Any]:
    """Scores over several seeds, with their mean and minimum."""
    runs = []
    for seed in seeds:
        log = generate(GeneratorConfig(seed=seed, days=days))
        runs.append((seed, score(log, run_monitor(log, events_of(log, parse), config))))
    summary: dict[str, Any] = {"seeds": [s for s, _ in runs], "days": days, "per_seed": {}}
    for seed, result in runs:
        summary["per_seed"][seed] = {"overall": result.overall, "patterns": result.patterns, "reads": result.reads}
    for name in ("precision", "recall", "f1"):
        values = [r.overall[name] for _, r in runs]
        summary[f"{name}_mean"], summary[f"{name}_min"] = round(statistics.fmean(values), 4), min(values)
    summary["patterns"] = {
        pattern: {
            f"{name}_{agg}": round(fn([r.patterns[pattern][name] for _, r in runs]), 4)
            for name in ("recall", "rule_precision") for agg, fn in (("mean", statistics.fmean), ("min", min))
        }
        for pattern in PATTERNS
    }
    return summary
