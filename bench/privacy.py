"""Benchmark of the patient-privacy monitor: speed and detection quality on generated hospital logs.

    python bench/privacy.py [--quick]

- speed: generation, parsing (HL7 + FHIR through the project's parsers: the baseline, measured in the same
  run) and scoring (PrivacyMonitor over the parsed events), in events/s; the ratio is scoring/parsing.
- quality: precision/recall/F1 per AuditEvent (alerts of level medium and above), overall and per snooping
  pattern, over several seeds (mean and min). The monitor learns only from the events, the care feed and
  the staff directory; it gets none of the generator's parameters.

Writes bench/results/privacy.json. --quick: 3 seeds of 4 days instead of 5 seeds of 7 days.
"""

from __future__ import annotations

import argparse
import io

from common import peak_rss_mib, report, timed
from healthswarm.detect.privacy.evaluate import evaluate, events_of, run_monitor
from healthswarm.detect.privacy.generator import PATTERNS, GeneratorConfig, generate
from healthswarm.ingest.formats import get_format
from healthswarm.model import Event


def parse(fmt: str, data: bytes, source: str) -> list[Event]:
    return [e for e in get_format(fmt).parse(io.BytesIO(data), source) if isinstance(e, Event)]


def main() -> None:
    argv = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    argv.add_argument("--quick", action="store_true")
    quick = argv.parse_args().quick
    seeds, days = (range(3), 4) if quick else (range(5), 7)

    log, gen_s = timed(lambda: generate(GeneratorConfig(seed=100, days=days)))
    records = len(log.audit) + log.hl7.count("MSH|")
    events, parse_s = timed(lambda: events_of(log, parse))
    alerts, detect_s = timed(lambda: run_monitor(log, events))
    quality, eval_s = timed(lambda: evaluate(seeds, parse, days=days))

    speed = {
        "records": records, "alerts": len(alerts),
        "generate_events_per_s": round(records / gen_s), "parse_events_per_s": round(len(events) / parse_s),
        "score_events_per_s": round(len(events) / detect_s),
        "score_vs_parse_ratio": round(parse_s / detect_s, 3),
    }
    figures = {"speed": speed, "baseline": "parsing only (HL7 v2 + FHIR AuditEvent parsers)", "quality": quality,
               "evaluation_seconds": round(eval_s, 1), "peak_rss_mib": round(peak_rss_mib(), 1)}
    rows = [
        ("records generated (seed 100)", f"{records}"),
        ("generate", f"{speed['generate_events_per_s']:,} events/s"),
        ("parse (baseline)", f"{speed['parse_events_per_s']:,} events/s"),
        ("score (PrivacyMonitor)", f"{speed['score_events_per_s']:,} events/s"),
        ("score / parse speed", f"{speed['score_vs_parse_ratio']}×"),
        ("seeds × days", f"{len(seeds)} × {days}"),
        ("precision mean / min", f"{quality['precision_mean']:.3f} / {quality['precision_min']:.3f}"),
        ("recall mean / min", f"{quality['recall_mean']:.3f} / {quality['recall_min']:.3f}"),
        ("F1 mean / min", f"{quality['f1_mean']:.3f} / {quality['f1_min']:.3f}"),
    ]
    for pattern in PATTERNS:
        p = quality["patterns"][pattern]
        rows.append((f"{pattern}: recall mean/min, rule precision mean/min",
                     f"{p['recall_mean']:.2f}/{p['recall_min']:.2f}, "
                     f"{p['rule_precision_mean']:.2f}/{p['rule_precision_min']:.2f}"))
    report("privacy", figures, rows, quick)


if __name__ == "__main__":
    main()
