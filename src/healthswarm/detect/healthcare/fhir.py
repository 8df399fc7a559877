"""FHIR access analytics over AuditEvents: per user (or client), its search parameters, who runs bulk
`$export`, and how many patients and search pages it goes through.

Per principal (`user.id`, else `user.name`, else the source address) it learns the search parameters it
uses (`Resource:parameter` from `url.original`), and the distinct patients and search-page requests per
`paging_window`, as exponentially weighted means; it learns who ran `$export`. After warm-up it raises:

- unusual search parameters: a parameter this principal never used (for a principal first seen after
  warm-up: one nobody used), one alert per event, then learned;
- bulk export: a `$export` by a principal not seen exporting before (once per principal);
- paging through patient lists: at least `paging_min_patients` distinct patients or `paging_min_pages`
  search pages in the window, and `paging_factor` times the principal's learned figure (one alert per
  episode; the episode's windows do not raise the learned figures).
"""

from __future__ import annotations

import re
from collections import deque
from dataclasses import dataclass, field
from urllib.parse import parse_qsl, urlsplit

from healthswarm.detect.attack import AttackCatalog
from healthswarm.detect.healthcare.alerts import MAX_EVIDENCE, AlertSink, Rule, listing, text
from healthswarm.detect.healthcare.windows import (
    BucketRate,
    KeyTable,
    SlidingCount,
    SlidingDistinct,
    Warmup,
    remember,
)
from healthswarm.model import Alert, Event

UNUSUAL_SEARCH = Rule("healthcare.fhir.unusual-search-parameter", "FHIR Search Parameter Unusual for This User",
                      "low", ("T1213",))
NEW_EXPORTER = Rule("healthcare.fhir.new-bulk-exporter", "FHIR Bulk $export by a Principal Not Seen Exporting",
                    "high", ("T1213", "T1530"))
PAGING = Rule("healthcare.fhir.patient-list-paging", "FHIR Patient Records Paged Through Far Above the User's "
              "Usual", "medium", ("T1213",))

#: Parameters that steer paging and rendering, not what is searched: left to the paging rule.
PAGING_PARAMS = frozenset({"_getpages", "_getpagesoffset", "_page", "page", "_offset", "_cursor"})
CONTROL_PARAMS = PAGING_PARAMS | {"_format", "_pretty", "_count"}
_RESOURCE = re.compile(r"^([A-Z][A-Za-z]+|\$[a-z][A-Za-z-]*)$")


@dataclass(slots=True)
class FhirConfig:
    warmup_events: int = 500          # learning only until this many FHIR events …
    warmup_seconds: float = 3600.0    # … or this much event time, whichever comes first
    paging_window: float = 600.0      # seconds of the sliding window (and of the learned buckets)
    paging_min_patients: int = 30     # distinct patients in the window …
    paging_min_pages: int = 20        # … or search-page requests in the window …
    paging_factor: float = 5.0        # … and this many times the principal's learned figure
    alpha: float = 0.05               # weight of the newest bucket in the learned figures
    export_actions: tuple[str, ...] = ("$export",)  # event.action suffixes (and URL path parts) of bulk export
    budget_per_hour: int = 20         # alerts per hour of event time; the rest are counted as suppressed
    max_keys: int = 10_000            # principals remembered
    max_values: int = 256             # search parameters per principal (and 16× that for everybody's)


@dataclass(slots=True)
class _Principal:
    patients: SlidingDistinct
    patient_rate: BucketRate
    pages: SlidingCount
    page_rate: BucketRate
    params: set[str] = field(default_factory=set)
    baseline: bool = False  # seen during warm-up: its own parameters are its baseline
    recent: deque[Event] = field(default_factory=lambda: deque(maxlen=MAX_EVIDENCE))
    paging: bool = False


def search_parameters(url: str) -> tuple[list[str], bool]:
    """(`Resource:parameter` of every search parameter, whether the URL asks for a search page)."""
    try:
        parts = urlsplit(url)
        pairs = parse_qsl(parts.query, keep_blank_values=True)
    except ValueError:
        return [], False
    resource = next((s for s in reversed(parts.path.split("/")) if _RESOURCE.match(s)), "")
    names = {k.strip() for k, _ in pairs if k.strip()}
    params = sorted(f"{resource}:{n}" for n in names if n.lower() not in CONTROL_PARAMS)
    return params, any(n.lower() in PAGING_PARAMS for n in names)


class FhirAnalytics:
    name = "fhir-analytics"

    def __init__(self, config: FhirConfig | None = None, attack: AttackCatalog | None = None) -> None:
        self.config = config or FhirConfig()
        c = self.config
        self.sink = AlertSink(self.name, c.budget_per_hour, attack)
        self.stats = self.sink.stats
        self.warmup = Warmup(c.warmup_events, c.warmup_seconds)
        self.principals: KeyTable[str, _Principal] = KeyTable(lambda: _Principal(
            SlidingDistinct(c.paging_window), BucketRate(c.paging_window, c.alpha),
            SlidingCount(c.paging_window), BucketRate(c.paging_window, c.alpha)), c.max_keys)
        self.all_params: set[str] = set()
        self.exporters: set[str] = set()

    def detect(self, event: Event) -> list[Alert]:
        fields = event.fields
        if not isinstance(fields, dict) or fields.get("observer.type") != "fhir":
            return []
        self.stats["events"] += 1
        t = event.timestamp.timestamp()
        armed = self.warmup.observe(t)
        key = (text(fields, "user.id") or text(fields, "user.name") or text(fields, "source.ip")
               or text(fields, "source.address"))
        if not key:
            self.stats["skipped:no-principal"] += 1
            return []
        principal = self.principals.get(key)
        if not armed:
            principal.baseline = True
        principal.recent.append(event)
        url = text(fields, "url.original")
        params, page = search_parameters(url) if url else ([], False)
        alerts = self._search(event, principal, key, params, armed)
        alerts += self._export(event, key, url, armed)
        alerts += self._paging(event, principal, key, page, t, armed)
        return alerts

    def flush(self) -> list[Alert]:
        return []  # every rule decides on the event that crosses its threshold

    def _search(self, event: Event, principal: _Principal, key: str, params: list[str], armed: bool) -> list[Alert]:
        if not params:
            return []
        own = principal.baseline
        new = [p for p in params if p not in (principal.params if own else self.all_params)]
        baseline = set(principal.params if own else self.all_params)
        cap = self.config.max_values
        for p in params:
            if not (remember(principal.params, p, cap) and remember(self.all_params, p, 16 * cap)):
                self.stats["not-learned:parameters-full"] += 1
        if not new or not armed:
            return []
        why = (f"{key} searched with {', '.join(new)}, never used by {key} before; its baseline: {listing(baseline)}"
               if own else f"{key} (first seen after warm-up) searched with {', '.join(new)}, never used by anyone "
               f"before; everybody's: {listing(baseline)}")
        return self.sink.emit(UNUSUAL_SEARCH, [event], why, {
            "principal": key, "new_parameters": new, "baseline_parameters": sorted(baseline)[:50],
            "compared_with": "own" if own else "everybody"})

    def _export(self, event: Event, key: str, url: str, armed: bool) -> list[Alert]:
        action = text(event.fields, "event.action")
        path = urlsplit(url).path if url else ""
        if not any(action.endswith(a) or f"/{a}" in path for a in self.config.export_actions):
            return []
        if key in self.exporters:
            return []
        baseline = set(self.exporters)
        if not remember(self.exporters, key, self.config.max_keys):
            self.stats["not-learned:exporters-full"] += 1
        if not armed:
            return []
        why = f"bulk {action or 'export'} by {key}, not seen exporting before; exporters so far: {listing(baseline)}"
        return self.sink.emit(NEW_EXPORTER, [event], why, {
            "principal": key, "action": action, "baseline_exporters": sorted(baseline)})

    def _paging(self, event: Event, principal: _Principal, key: str, page: bool, t: float,
                armed: bool) -> list[Alert]:
        c = self.config
        value = event.fields.get("patient.identifiers")
        patients = [str(v) for v in value if isinstance(v, str | int)] if isinstance(value, list) else []
        patients = patients or [p for p in (text(event.fields, "patient.id"),) if p]
        distinct = principal.patients.size(t)
        for patient in patients:
            distinct = principal.patients.add(t, patient)
            principal.patient_rate.add(t, patient)
        pages = principal.pages.add(t) if page else principal.pages.size(t)
        if page:
            principal.page_rate.add(t)
        if not patients and not page:
            return []
        usual_patients, usual_pages = principal.patient_rate.mean, principal.page_rate.mean
        over = ((distinct >= c.paging_min_patients and distinct > c.paging_factor * usual_patients)
                or (pages >= c.paging_min_pages and pages > c.paging_factor * usual_pages))
        if principal.paging:
            principal.patient_rate.hold()
            principal.page_rate.hold()
            principal.paging = distinct >= c.paging_min_patients / 2 or pages >= c.paging_min_pages / 2
            return []
        if not armed or not over:
            return []
        principal.paging = True
        principal.patient_rate.hold()
        principal.page_rate.hold()
        why = (f"{key} went through {distinct} distinct patients and {pages} search pages within "
               f"{c.paging_window:g} s (thresholds {c.paging_min_patients} patients / {c.paging_min_pages} pages; "
               f"its learned figures {usual_patients:.2f} patients, {usual_pages:.2f} pages per window)")
        return self.sink.emit(PAGING, list(principal.recent), why, {
            "principal": key, "distinct_patients": distinct, "pages": pages, "window_s": c.paging_window,
            "learned_patients": round(usual_patients, 4), "learned_pages": round(usual_pages, 4)})
