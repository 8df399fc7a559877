"""Alerts → incidents, as they arrive.

An alert joins an open incident when they share an entity (an asset, a user, a host, an internal
address, a flow's community id, a patient record) and the alert falls within the join window of
the incident's activity. An alert that shares entities with several incidents merges them: they
were one attack seen from several sides. Each join and merge records the rule that applied, so an
analyst can read why alerts were grouped.

Infrastructure hubs (domain controllers, DNS servers, proxies, firewalls, SIEMs) appear in almost
every attack and in every normal day: they are kept on the incident but never used to join, or a
busy hospital would have one incident. Suppressions silence a rule (optionally only for one entity)
until they expire, with a reason, and are counted.

Memory: in a stream that never ends (the correlate worker), `lateness` bounds what is kept. An incident
whose last alert is more than `window + lateness` older than the newest alert seen can join no alert that
arrives at most `lateness` late, so it is evicted with the ids of its alerts (the store deduplicates a
redelivered one). Without `lateness` every incident stays, as a batch run that returns them all needs.
A source that lags further behind than `lateness` (an audit feed delivered in bulk, a backlog being read) brings
alerts older than that horizon: their incidents are evicted once no alert has joined them for `IDLE_ALERTS` alerts,
so that they still group while their source goes through them, and do not pile up while it catches up.
"""

from __future__ import annotations

import bisect
import hashlib
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from healthswarm.model import LEVELS, Alert, Asset, Level
from healthswarm.model.incident import CLOSED_STATES, TACTIC_STAGES, Incident, Stage, TimelineEntry
from healthswarm.model.words import after, counted

HUB_KINDS = frozenset({"domain-controller", "dns-server", "proxy", "firewall", "siem", "router", "switch",
                       "wireless-controller"})
# entity kinds whose values are compared case-insensitively (Windows and DNS names)
CASELESS_KINDS = frozenset({"user", "host"})

Entity = tuple[str, str]
# an incident behind the eviction horizon (made by late alerts) is evicted once this many alerts were placed since
# one last joined it; also how often, in alerts placed, such incidents are looked for. The trade: a source lagging
# so far behind the others that more alerts than this come between the parts of one attack splits its incident
IDLE_ALERTS = 4_096


@dataclass(frozen=True)
class Suppression:
    """Silence `rule_id` (all rules when None), for one entity or all, until `until`, because `reason`."""

    reason: str
    until: datetime
    rule_id: str | None = None
    entity: Entity | None = None

    def applies(self, alert: Alert, entities: set[Entity]) -> bool:
        if alert.timestamp >= self.until:
            return False
        if self.rule_id is not None and alert.rule_id != self.rule_id:
            return False
        return self.entity is None or self.entity in entities


@dataclass
class CorrelationStats:
    alerts: int = 0
    duplicates: int = 0
    suppressed: Counter[str] = field(default_factory=Counter)
    merges: int = 0


def alert_entities(alert: Alert) -> set[Entity]:
    """The entities an alert names: its assets and what its detector saw in the events
    (`details["entities"]`: kind → values, e.g. user, host, ip, patient, facility)."""
    found: set[Entity] = {("asset", a) for a in alert.assets}
    seen = alert.details.get("entities", {}) if isinstance(alert.details, dict) else {}
    for kind, values in (seen.items() if isinstance(seen, dict) else ()):
        for value in values if isinstance(values, list | tuple | set) else (values,):
            if value not in (None, "", "-"):
                found.add((kind, str(value).lower() if kind in CASELESS_KINDS else str(value)))
    return found


def alert_stages(alert: Alert) -> set[Stage]:
    """The kill-chain stages an alert's ATT&CK tactics stand for; an alert that names techniques but no tactic
    (a learned detector's) gets its techniques' tactics from the ATT&CK data. Empty when it names neither."""
    stages = {TACTIC_STAGES[t] for ref in alert.tactics for t in (ref.shortname, ref.id) if t in TACTIC_STAGES}
    if not alert.tactics and alert.techniques:
        from healthswarm.detect.attack import catalog  # the ATT&CK bundles are read on first need only

        lookup = catalog().technique_tactics
        stages = {TACTIC_STAGES[s] for t in alert.techniques
                  for s in lookup.get(t.id) or lookup.get(t.id.split(".")[0], ()) if s in TACTIC_STAGES}
    return stages


def alert_stage(alert: Alert) -> Stage:
    return max(alert_stages(alert), default=Stage.RECONNAISSANCE)


class Correlator:
    """Streaming alert → incident grouping; `add()` returns the incident the alert is now part of."""

    def __init__(self, assets: Iterable[Asset] = (), window: timedelta = timedelta(hours=24),
                 suppressions: Iterable[Suppression] = (), lateness: timedelta | None = None) -> None:
        self.window = window
        self.suppressions = list(suppressions)
        self.stats = CorrelationStats()
        self._assets: Mapping[str, Asset] = {a.id: a for a in assets}
        self._hubs = {("asset", a.id) for a in self._assets.values() if a.kind in HUB_KINDS}
        self._hubs |= {("host", h.lower()) for a in self._assets.values() if a.kind in HUB_KINDS for h in a.hostnames}
        self._hubs |= {("ip", ip) for a in self._assets.values() if a.kind in HUB_KINDS for ip in a.addresses}
        self.lateness = lateness
        self.incidents: dict[str, Incident] = {}
        self._by_entity: dict[Entity, set[str]] = {}
        self._seen_alerts: set[str] = set()
        # per incident, kept up to date on each alert so that rating one costs no pass over its timeline
        self._worst: dict[str, TimelineEntry] = {}
        self._safety: dict[str, Level] = {}
        self._newest: datetime | None = None
        self._swept: datetime | None = None
        self._joined: dict[str, int] = {}  # incident id → the ordinal (stats.alerts) of the alert that joined it last

    def add(self, alert: Alert) -> Incident | None:
        """Place one alert; None when it is a duplicate or suppressed."""
        self.stats.alerts += 1
        if alert.id in self._seen_alerts:
            self.stats.duplicates += 1
            return None
        entities = alert_entities(alert)
        for suppression in self.suppressions:
            if suppression.applies(alert, entities):
                self.stats.suppressed[suppression.reason] += 1
                return None
        self._seen_alerts.add(alert.id)
        self._advance(alert.timestamp)
        joinable = entities - self._hubs
        # each incident sharing an entity once (an incident shares several with most alerts), in no order: sorted below
        sharing = {i for e in joinable for i in self._by_entity.get(e, ())}
        candidates = sorted((inc for i in sharing if self._open(inc := self.incidents[i], alert)),
                            key=lambda inc: (inc.first_seen, inc.id))
        if not candidates:
            incident = self._new(alert)
            note = "new incident"
        else:
            incident = candidates[0]
            shared = sorted(f"{k}:{v}" for k, v in joinable if incident.id in self._by_entity.get((k, v), ()))
            # how long after the incident's latest alert this one came (the join window is in the docs)
            note = f"joined {after(alert.timestamp - incident.last_seen)}: shares {', '.join(shared)}"
            for other in candidates[1:]:
                self._merge(other, incident)
                note += f"; merged {other.id}"
        self._attach(incident, alert, entities, note)
        return incident

    def add_all(self, alerts: Iterable[Alert]) -> list[Incident]:
        for alert in sorted(alerts, key=lambda a: a.timestamp):
            self.add(alert)
        return sorted(self.incidents.values(), key=lambda i: (-i.severity, i.first_seen))

    def _open(self, incident: Incident, alert: Alert) -> bool:
        return (incident.state not in CLOSED_STATES
                and incident.first_seen - self.window <= alert.timestamp <= incident.last_seen + self.window)

    def _new(self, alert: Alert) -> Incident:
        ident = "INC-" + hashlib.blake2b(alert.id.encode(), digest_size=6).hexdigest()
        incident = Incident(id=ident, title=alert.title, first_seen=alert.timestamp, last_seen=alert.timestamp)
        self.incidents[ident] = incident
        return incident

    def _attach(self, incident: Incident, alert: Alert, entities: set[Entity], note: str) -> None:
        incident.alert_ids.append(alert.id)
        incident.first_seen = min(incident.first_seen, alert.timestamp)
        incident.last_seen = max(incident.last_seen, alert.timestamp)
        incident.assets.update(alert.assets)
        incident.organisations.update(self._assets[a].organisation for a in alert.assets if a in self._assets)
        incident.techniques.update(t.id for t in alert.techniques)
        incident.tactics.update(t.shortname or t.id for t in alert.tactics)
        incident.entities.update(entities)
        for stage in alert_stages(alert):
            incident.reach(stage, alert.timestamp, alert.id)
        entry = TimelineEntry(alert.timestamp, alert.id, alert.title, alert.level,
                              tuple(t.shortname or t.id for t in alert.tactics), alert.assets, note)
        # after the entries of the same time, as a stable sort would put it; alerts mostly arrive in order
        if incident.timeline and incident.timeline[-1].timestamp > entry.timestamp:
            bisect.insort_right(incident.timeline, entry, key=_entry_time)
        else:
            incident.timeline.append(entry)
        worst = self._worst.get(incident.id)
        if worst is None or _badness(entry) > _badness(worst):  # a tie keeps the earlier entry, as max() does
            self._worst[incident.id] = entry
        safety = max((self._assets[a].criticality.safety for a in alert.assets if a in self._assets),
                     default=Level.NONE)
        self._safety[incident.id] = max(self._safety.get(incident.id, Level.NONE), safety)
        for entity in entities:
            self._by_entity.setdefault(entity, set()).add(incident.id)
        self._joined[incident.id] = self.stats.alerts
        self._rate(incident, alert)

    def _rate(self, incident: Incident, alert: Alert) -> None:
        """Severity: the worst alert, raised by a safety-critical asset and by an attack that has spread."""
        incident.alert_severity = max(incident.alert_severity, alert.severity)
        spread = incident.stage >= Stage.LATERAL_MOVEMENT
        incident.severity = min(4, incident.alert_severity + (self._safety[incident.id] >= Level.HIGH) + spread)
        worst = self._worst[incident.id]
        # name the incident after its worst alert and where that alert happened
        where = worst.assets[0] if worst.assets else min(incident.assets, default="")
        more = len(incident.alert_ids) - 1
        incident.title = (f"{worst.title}" + (f" on {where}" if where else "")
                          + (f" (+{counted(more, 'alert')})" if more else ""))

    def _merge(self, source: Incident, target: Incident) -> None:
        self.stats.merges += 1
        target.alert_ids.extend(source.alert_ids)
        target.first_seen = min(target.first_seen, source.first_seen)
        target.last_seen = max(target.last_seen, source.last_seen)
        for name in ("assets", "organisations", "techniques", "tactics", "entities"):
            getattr(target, name).update(getattr(source, name))
        target.stage = max(target.stage, source.stage)
        for step in source.reached.values():
            target.reach(step.stage, step.first_seen, step.alert_id)
        target.timeline = sorted(target.timeline + source.timeline, key=_entry_time)
        # on a tie the target's entry comes first in the merged timeline, so it stays the worst
        source_worst = self._worst.pop(source.id)
        if _badness(source_worst) > _badness(self._worst[target.id]):
            self._worst[target.id] = source_worst
        self._safety[target.id] = max(self._safety[target.id], self._safety.pop(source.id))
        target.merged_from.append(source.id)
        target.alert_severity = max(target.alert_severity, source.alert_severity)
        for entity in source.entities:
            ids = self._by_entity.setdefault(entity, set())
            ids.discard(source.id)
            ids.add(target.id)
        del self.incidents[source.id]
        del self._joined[source.id]

    def _advance(self, when: datetime) -> None:
        """Evict, at most once per sixteenth of the window of alert time, what can no longer be joined; and every
        IDLE_ALERTS alerts, the incidents of late alerts that none joined since."""
        if self.lateness is None:
            return
        if self._newest is not None and when <= self._newest:
            if self.stats.alerts % IDLE_ALERTS == 0:
                horizon = self._newest - self.lateness - self.window
                idle = self.stats.alerts - IDLE_ALERTS
                for incident in [i for i in self.incidents.values()
                                 if i.last_seen < horizon and self._joined[i.id] <= idle]:
                    self._evict(incident)
            return
        self._newest = when
        if self._swept is not None and when - self._swept < self.window / 16:
            return
        self._swept = when
        # _open() joins an alert at t when t <= last_seen + window; no alert arrives older than newest - lateness
        horizon = when - self.lateness - self.window
        for incident in [i for i in self.incidents.values() if i.last_seen < horizon]:
            self._evict(incident)

    def _evict(self, incident: Incident) -> None:
        del self.incidents[incident.id]
        del self._joined[incident.id]
        del self._worst[incident.id]
        del self._safety[incident.id]
        self._seen_alerts.difference_update(incident.alert_ids)
        for entity in incident.entities:
            ids = self._by_entity[entity]
            ids.discard(incident.id)
            if not ids:
                del self._by_entity[entity]


def _entry_time(entry: TimelineEntry) -> datetime:
    return entry.timestamp


def _badness(entry: TimelineEntry) -> tuple[int, float]:
    """Worse level first, then the earlier alert: the one an incident is named after."""
    return LEVELS.index(entry.level), -entry.timestamp.timestamp()
