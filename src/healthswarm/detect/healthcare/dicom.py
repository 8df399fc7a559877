"""DICOM association analytics: per calling AE, how it queries, where it moves studies and how many.

Per calling AE title (else the source address) it learns the distinct C-FIND queries (patient or study
asked for) per `sweep_window` and the distinct studies it moves or retrieves (C-MOVE, C-GET) per
`volume_bucket`, both as exponentially weighted means, and the C-MOVE destinations it uses. It also
learns every AE title seen in any role. After warm-up it raises:

- a query sweep: at least `sweep_min` distinct queries in the window and `sweep_factor` times the AE's
  learned figure (a caller never seen has a learned figure of 0, so the minimum decides);
- an unusual C-MOVE destination: one this caller never used (high when the AE title was never seen at
  all: images leaving for an unknown archive), one alert per caller and destination;
- a study volume anomaly: at least `volume_min` distinct studies moved/retrieved in the bucket and
  `volume_factor` times the AE's learned volume (one alert per bucket).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

from healthswarm.detect.attack import AttackCatalog
from healthswarm.detect.healthcare.alerts import MAX_EVIDENCE, AlertSink, Rule, listing, text
from healthswarm.detect.healthcare.windows import BucketRate, KeyTable, SlidingDistinct, Warmup, remember
from healthswarm.model import Alert, Event

SWEEP = Rule("healthcare.dicom.query-sweep", "DICOM C-FIND Sweep Above the AE's Learned Query Rate", "medium",
             ("T1083", "T1213"))
NEW_DESTINATION = Rule("healthcare.dicom.unusual-move-destination", "DICOM C-MOVE to a Destination Never Used "
                       "by This AE", "medium", ("T1213", "T1048"))
VOLUME = Rule("healthcare.dicom.study-volume", "DICOM Studies Moved or Retrieved Far Above the AE's Usual",
              "medium", ("T1213", "T1530"))


@dataclass(slots=True)
class DicomConfig:
    warmup_events: int = 500        # learning only until this many DICOM events …
    warmup_seconds: float = 3600.0  # … or this much event time, whichever comes first
    sweep_window: float = 300.0     # seconds of the sliding query window (and of the learned buckets)
    sweep_min: int = 30             # a sweep needs at least this many distinct queries in the window …
    sweep_factor: float = 5.0       # … and this many times the AE's learned distinct queries per window
    volume_bucket: float = 3600.0   # seconds per volume bucket
    volume_min: int = 20            # distinct studies moved/retrieved in one bucket …
    volume_factor: float = 5.0      # … and this many times the AE's learned volume
    alpha: float = 0.05             # weight of the newest bucket in the learned figures
    budget_per_hour: int = 20       # alerts per hour of event time; the rest are counted as suppressed
    max_keys: int = 10_000          # calling AEs (and AE titles) remembered
    max_values: int = 256           # destinations per calling AE


@dataclass(slots=True)
class _Caller:
    queries: SlidingDistinct
    query_rate: BucketRate
    studies: BucketRate
    destinations: set[str] = field(default_factory=set)
    finds: deque[Event] = field(default_factory=lambda: deque(maxlen=MAX_EVIDENCE))
    moves: deque[Event] = field(default_factory=lambda: deque(maxlen=MAX_EVIDENCE))
    sweeping: bool = False
    volume_alerted: int | None = None  # bucket index of the last volume alert


class DicomAnalytics:
    name = "dicom-analytics"

    def __init__(self, config: DicomConfig | None = None, attack: AttackCatalog | None = None) -> None:
        self.config = config or DicomConfig()
        c = self.config
        self.sink = AlertSink(self.name, c.budget_per_hour, attack)
        self.stats = self.sink.stats
        self.warmup = Warmup(c.warmup_events, c.warmup_seconds)
        self.callers: KeyTable[str, _Caller] = KeyTable(lambda: _Caller(
            SlidingDistinct(c.sweep_window), BucketRate(c.sweep_window, c.alpha),
            BucketRate(c.volume_bucket, c.alpha)), c.max_keys)
        self.known_aes: set[str] = set()

    def detect(self, event: Event) -> list[Alert]:
        fields = event.fields
        if not isinstance(fields, dict) or fields.get("observer.type") != "dicom":
            return []
        command = text(fields, "dicom.command")
        if not command:
            return []  # a Part 10 file, not an association event: nothing about who asked for what
        self.stats["events"] += 1
        t = event.timestamp.timestamp()
        armed = self.warmup.observe(t)
        key = text(fields, "dicom.calling_ae_title") or text(fields, "source.ip")
        if not key:
            self.stats["skipped:no-caller"] += 1
            return []
        caller = self.callers.get(key)
        alerts: list[Alert] = []
        if command == "C-FIND":
            alerts += self._sweep(event, caller, key, t, armed)
        elif command in ("C-MOVE", "C-GET"):
            if command == "C-MOVE":
                alerts += self._destination(event, caller, key, armed)
            alerts += self._volume(event, caller, key, t, armed)
        for name in ("dicom.calling_ae_title", "dicom.called_ae_title", "dicom.move_destination"):
            if (title := text(fields, name)) and not remember(self.known_aes, title, self.config.max_keys):
                self.stats["not-learned:ae-titles-full"] += 1
        return alerts

    def flush(self) -> list[Alert]:
        return []  # every rule decides on the event that crosses its threshold

    def _sweep(self, event: Event, caller: _Caller, key: str, t: float, armed: bool) -> list[Alert]:
        c = self.config
        fields = event.fields
        # what the query asked for; a query naming neither patient nor study is a wildcard
        query = text(fields, "patient.id") or text(fields, "dicom.study_instance_uid") or "*"
        caller.finds.append(event)
        distinct = caller.queries.add(t, query)
        caller.query_rate.add(t, query)
        expected = caller.query_rate.mean
        if caller.sweeping:
            caller.query_rate.hold()
            caller.sweeping = distinct >= c.sweep_min / 2
            return []
        if not armed or distinct < c.sweep_min or distinct <= c.sweep_factor * expected:
            return []
        caller.sweeping = True
        caller.query_rate.hold()
        called = sorted({text(e.fields, "dicom.called_ae_title") for e in caller.finds} - {""})
        why = (f"{distinct} distinct C-FIND queries (patients/studies) from {key} within {c.sweep_window:g} s to "
               f"{listing(called)} (threshold {c.sweep_min}; its learned figure {expected:.2f} per "
               f"{c.sweep_window:g} s)")
        return self.sink.emit(SWEEP, list(caller.finds), why, {
            "calling_ae": key, "distinct_queries": distinct, "window_s": c.sweep_window,
            "learned": round(expected, 4), "called_ae": called})

    def _destination(self, event: Event, caller: _Caller, key: str, armed: bool) -> list[Alert]:
        destination = text(event.fields, "dicom.move_destination")
        if not destination:
            self.stats["skipped:move-without-destination"] += 1
            return []
        if destination in caller.destinations:
            return []
        baseline = set(caller.destinations)
        seen_anywhere = destination in self.known_aes
        if not remember(caller.destinations, destination, self.config.max_values):
            self.stats["not-learned:destinations-full"] += 1
        if not armed:
            return []
        why = (f"C-MOVE by {key} to {destination}, "
               + ("an AE title seen before in other roles" if seen_anywhere else "an AE title never seen at all")
               + f"; its destinations so far: {listing(baseline)}")
        return self.sink.emit(NEW_DESTINATION, [event], why, {
            "calling_ae": key, "destination": destination, "destination_seen_elsewhere": seen_anywhere,
            "baseline_destinations": sorted(baseline)}, level="medium" if seen_anywhere else "high")

    def _volume(self, event: Event, caller: _Caller, key: str, t: float, armed: bool) -> list[Alert]:
        c = self.config
        study = text(event.fields, "dicom.study_instance_uid") or text(event.fields, "patient.id")
        if not study:
            self.stats["skipped:retrieve-without-study"] += 1
            return []
        caller.moves.append(event)
        count = caller.studies.add(t, study)
        expected = caller.studies.mean
        bucket = int(t // c.volume_bucket)
        if (not armed or caller.volume_alerted == bucket or count < c.volume_min
                or count <= c.volume_factor * expected):
            return []
        caller.volume_alerted = bucket
        caller.studies.hold()
        why = (f"{count} distinct studies moved/retrieved by {key} within this {c.volume_bucket:g} s bucket "
               f"(threshold {c.volume_min}; its learned volume {expected:.2f} per bucket)")
        return self.sink.emit(VOLUME, list(caller.moves), why, {
            "calling_ae": key, "studies": count, "bucket_s": c.volume_bucket, "learned": round(expected, 4)})
