"""Draft breach notifications (Markdown and HTML) filled from the case and the inventory: nature of the
breach, categories and approximate number of data subjects and records, likely consequences, measures."""

from __future__ import annotations

import html
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from healthswarm.model import Asset
from healthswarm.respond.cases import Case
from healthswarm.respond.deadlines import deadlines, format_left, regime_rules

#: What data an asset kind holds, for "categories of personal data".
DATA_CATEGORIES: dict[str, str] = {
    "ehr": "electronic health records (diagnoses, medication, clinical notes)",
    "emr": "electronic medical records", "his": "patient demographics and admissions",
    "lis": "laboratory orders and results", "ris": "radiology orders and reports",
    "pacs": "medical images (DICOM studies)", "fhir-server": "health records exchanged over FHIR",
    "portal": "patient portal accounts", "pharmacy-system": "prescriptions and dispensing records",
    "interface-engine": "HL7 messages in transit (admissions, orders, results)",
}
TITLES = {"gdpr": "Personal data breach notification (GDPR Art. 33)",
          "nis2": "Significant incident notification (NIS2 Art. 23)",
          "hipaa": "Breach notification (HIPAA 45 CFR 164.404-408)"}
CONSEQUENCES = {
    "T1003": "stolen credentials may give access to further systems holding health data",
    "T1041": "copies of health data may be held by an unauthorised party",
    "T1213": "confidential records were read without a care relationship",
    "T1486": "unavailability of clinical data may delay diagnosis and treatment",
    "T1021": "the attacker moved between systems; more systems may be affected",
    "T1499": "clinical messaging was disrupted; admissions and results may be delayed",
}


@dataclass(frozen=True)
class Section:
    heading: str
    lines: tuple[str, ...]


def data_subjects(case: Case, assets: dict[str, Asset]) -> tuple[int, int, list[str]]:
    """(estimated data subjects, records held by the affected systems, categories of data).

    The estimate is what the incident touched: the distinct patients in the events its alerts rest on
    (`case.patients`, with its basis in `case.patients_basis`). The records the affected systems hold are
    what could have been reached, an upper bound, never the estimate: a PACS provider's whole archive is
    not the number of people a sweep of fifty studies affected."""
    affected = [assets[a] for a in case.assets if a in assets]
    records = sum(a.records or 0 for a in affected)
    categories = sorted({DATA_CATEGORIES[a.kind] for a in affected if a.kind in DATA_CATEGORIES})
    return case.patients, records, categories


def controllers(case: Case) -> list[str]:
    """The organisations that notify: the controllers of the affected patients' data (`case.controllers`,
    from whose patients the incident touched), else the organisations the incident involved."""
    return list(case.controllers) or list(case.organisations)


def sections(case: Case, assets: dict[str, Asset], regime: str, now: datetime, organisation: str = "") -> list[Section]:
    subjects, records, categories = data_subjects(case, assets)
    affected = [assets[a] for a in case.assets if a in assets]
    others = [o for o in case.organisations if o not in controllers(case)]
    consequences = sorted({text for t in case.techniques for prefix, text in CONSEQUENCES.items()
                           if t == prefix or t.startswith(prefix + ".")})
    measures = [f"{h['at'][:16].replace('T', ' ')} UTC: moved to {h['to']}" for h in case.phase_history]
    measures += [f"done: {t.title}" for t in case.tasks if t.status == "done"]
    measures += [f"planned: {t.title}" for t in case.tasks if t.status != "done"]
    due = [d for d in deadlines(case, now, (regime,))]
    return [
        Section("Notifying organisation (controller)", (
            organisation or ", ".join(controllers(case)) or "(to complete)",
            *((f"Controller: the organisation whose patients the incident touched; also involved (processors or "
               f"other parties, to inform, not notifying): {', '.join(others)}",) if others else ()),
            f"Case {case.id}; contact: {', '.join(case.owners) or '(to complete)'}")),
        Section("Timeline", (f"Became aware: {case.aware_at:%Y-%m-%d %H:%M} UTC",
                             f"Case opened: {case.opened:%Y-%m-%d %H:%M} UTC",
                             f"Draft prepared: {now:%Y-%m-%d %H:%M} UTC")),
        Section("Nature of the breach", (case.title, case.description or "(to complete)",
                                         f"ATT&CK techniques: {', '.join(case.techniques) or 'none recorded'}")),
        Section("Systems affected", tuple(f"{a.id}: {a.kind} {a.name!r} ({a.organisation})" for a in affected)
                or ("(none recorded)",)),
        Section("Data subjects and records", (
            f"Estimated number of data subjects: {subjects:,} (an estimate; basis: "
            f"{case.patients_basis or 'patients named in the alerts'})" if subjects else
            "Estimated number of data subjects: (to assess: the incident's events name no patient)",
            f"Records held by the affected systems: {records:,} (what could have been reached, an upper bound; "
            "not the estimate)" if records else "Records held by the affected systems: none recorded",
            "Categories of personal data: " + ("; ".join(categories) or "(to complete: no record-holding system "
                                                "among the affected assets)"))),
        Section("Likely consequences", tuple(consequences) or ("(to assess)",)),
        Section("Measures taken or proposed", tuple(measures) or ("(to complete)",)),
        Section("Deadlines", tuple(f"{d.rule.article}: {d.rule.obligation} to {d.rule.recipient}"
                                   + (f", due {d.due:%Y-%m-%d %H:%M} UTC ({format_left(d.left)})" if d.due
                                      else ", without undue delay") for d in due)),
    ]


def draft(case: Case, assets: dict[str, Asset], regime: str, now: datetime, organisation: str = "") -> dict[str, Any]:
    """{"markdown": …, "html": …} for one regime."""
    regime_rules(regime)  # a clear error for an unknown regime
    parts = sections(case, assets, regime, now, organisation)
    title = TITLES[regime]
    md = [f"# {title}", "", "_Draft generated by healthswarm: review every statement before sending._", ""]
    body = [f"<h1>{html.escape(title)}</h1>",
            "<p><em>Draft generated by healthswarm: review every statement before sending.</em></p>"]
    for section in parts:
        md += [f"## {section.heading}", "", *(f"- {line}" for line in section.lines), ""]
        body += [f"<h2>{html.escape(section.heading)}</h2>", "<ul>",
                 *(f"<li>{html.escape(line)}</li>" for line in section.lines), "</ul>"]
    page = ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>{html.escape(title)}</title></head><body>\n" + "\n".join(body) + "\n</body></html>\n")
    return {"markdown": "\n".join(md), "html": page}
