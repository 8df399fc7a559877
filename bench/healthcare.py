"""Benchmark of the clinical protocol analytics (detect/healthcare): throughput per detector.

    python bench/healthcare.py [--quick]

The demo scenario's HL7, DICOM and FHIR events (parsed by the project's own parsers) are replicated
day after day, each copy shifted by 24 h with its AE titles, users and facilities kept (so the detectors
learn them, and each day's attacks recur), to about 100,000 events (25,000 with --quick). Each detector
is timed alone, on one core, against a pass-through detector measured in the same run that reads the
same fields and keeps nothing: the ratio says what learning and alerting cost over merely looking at
each event. Also reported: alerts per rule over the replicated stream, suppressed alerts, peak memory.
Writes bench/results/healthcare.json.
"""

from __future__ import annotations

import argparse
import time
from collections import Counter
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from common import peak_rss_mib, report
from healthswarm.demo import LOGS
from healthswarm.detect.base import Detector
from healthswarm.detect.healthcare import DicomAnalytics, FhirAnalytics, Hl7Analytics, protocol_detectors
from healthswarm.ingest.formats import dicom, fhir, hl7v2
from healthswarm.model import Alert, Event

#: The fields the detectors read, per observer type: what the pass-through baseline reads too.
READ = {
    "hl7": ("hl7.message_type", "hl7.sending_application", "hl7.sending_facility", "hl7.receiving_application",
            "hl7.receiving_facility", "hl7.control_id", "hl7.version", "source.ip", "event.kind"),
    "dicom": ("dicom.command", "dicom.calling_ae_title", "dicom.called_ae_title", "dicom.move_destination",
              "dicom.study_instance_uid", "patient.id", "source.ip"),
    "fhir": ("user.id", "user.name", "url.original", "event.action", "patient.identifiers", "patient.id"),
}


class PassThrough:
    """Reads the fields the analytics read, learns nothing, raises nothing: the cost of looking."""

    name = "pass-through"

    def __init__(self) -> None:
        self.seen = 0

    def detect(self, event: Event) -> list[Alert]:
        fields = event.fields
        names = READ.get(fields.get("observer.type"), ())  # type: ignore[call-overload]
        self.seen += sum(1 for n in names if isinstance(fields.get(n), str))
        event.timestamp.timestamp()
        return []

    def flush(self) -> list[Alert]:
        return []


def demo_events() -> list[Event]:
    out: list[Event] = []
    for fmt, name in ((hl7v2.FORMAT, "hl7-adt.hl7"), (dicom.FORMAT, "dicom-associations.json"),
                      (fhir.FORMAT, "ehr-audit.ndjson")):
        path = LOGS / name
        with path.open("rb") as stream:
            out += [e for e in fmt.parse(stream, name) if isinstance(e, Event)]
    return sorted(out, key=lambda e: e.timestamp)


def replicate(events: list[Event], target: int) -> list[Event]:
    copies = max(1, round(target / len(events)))
    return [Event(e.timestamp + timedelta(days=day), e.fields, e.original, e.source, e.record + day * 100_000)
            for day in range(copies) for e in events]


def measure(make: Callable[[], Detector], events: list[Event], repeats: int) -> dict[str, Any]:
    """Best of `repeats` CPU-timed passes, each with a fresh detector (learned state starts empty)."""
    best = float("inf")
    alerts: list[Alert] = []
    detector = make()
    for _ in range(repeats):
        detector = make()
        alerts = []
        start = time.process_time()
        for event in events:
            alerts += detector.detect(event)
        alerts += detector.flush()
        best = min(best, time.process_time() - start)
    stats = getattr(detector, "stats", Counter())
    return {"seconds": round(best, 4), "events_per_s": round(len(events) / best) if best else None,
            "alerts": len(alerts), "alerts_by_rule": dict(Counter(a.rule_id for a in alerts)),
            "suppressed": sum(v for k, v in stats.items() if k.startswith("suppressed:"))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="about 25,000 events instead of 100,000, one pass")
    args = parser.parse_args()
    base = demo_events()
    events = replicate(base, 25_000 if args.quick else 100_000)
    repeats = 1 if args.quick else 3
    per_type = Counter(e.fields.get("observer.type") for e in events)
    figures: dict[str, Any] = {"events": len(events), "demo_events": len(base), "days": len(events) // len(base),
                               "events_by_type": dict(per_type), "repeats": repeats}
    rows = [("events (demo replicated day after day)", f"{len(events):,} ({len(events) // len(base)} days)")]
    # each detector on its own protocol's events, the pass-through on the same events; then all three on all
    cases: dict[str, tuple[Callable[[], Detector], list[Event]]] = {
        "hl7-analytics": (Hl7Analytics, [e for e in events if e.fields.get("observer.type") == "hl7"]),
        "dicom-analytics": (DicomAnalytics, [e for e in events if e.fields.get("observer.type") == "dicom"]),
        "fhir-analytics": (FhirAnalytics, [e for e in events if e.fields.get("observer.type") == "fhir"]),
        "all three": (lambda: _Together(protocol_detectors()), events),
    }
    for name, (make, subset) in cases.items():
        baseline = measure(PassThrough, subset, repeats)
        result = measure(make, subset, repeats)
        result["events"] = len(subset)
        result["pass_through_events_per_s"] = baseline["events_per_s"]
        result["ratio_to_pass_through"] = round(result["events_per_s"] / baseline["events_per_s"], 3)
        figures[name] = result
        rows.append((f"{name} ({len(subset):,} events)",
                     f"{result['events_per_s']:,}/s vs {baseline['events_per_s']:,}/s pass-through = "
                     f"{result['ratio_to_pass_through']:.2f}; {result['alerts']} alerts, "
                     f"{result['suppressed']} suppressed"))
    figures["peak_rss_mib"] = round(peak_rss_mib(), 1)
    rows.append(("peak memory", f"{figures['peak_rss_mib']} MiB"))
    report("healthcare", figures, rows, args.quick)


class _Together:
    """The three detectors as the detection stage runs them: every detector sees every event."""

    name = "protocol-analytics"

    def __init__(self, detectors: list[Any]) -> None:
        self.detectors = detectors

    def detect(self, event: Event) -> list[Alert]:
        return [a for d in self.detectors for a in d.detect(event)]

    def flush(self) -> list[Alert]:
        return [a for d in self.detectors for a in d.flush()]

    @property
    def stats(self) -> Counter[str]:
        return sum((d.stats for d in self.detectors), Counter())


if __name__ == "__main__":
    main()
