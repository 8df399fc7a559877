"""PrivacyMonitor: reads of patient records (FHIR AuditEvents) judged against care relationships and habits.

Every read is judged `decision_delay` after it happened (in stream time), or at `flush`: by then the ADT
message that admits the patient a little later, and the colleagues' reads that show a ward team at work,
have arrived. Privacy audits are retrospective anyway; a delay of hours costs nothing and spares alarms.

A read is explained by a care relationship (`CareRelationships.explain`: attending/referring/admitting,
ward, Encounter, CareTeam, registration), or, more weakly, by its peers: at least `peer_min` colleagues
who share a ward with the user read the same record within `peer_window` (teams treat patients whom the
feeds do not show them with: ICU teams, consults). Rules, all raised as ATT&CK T1213 (insider collection):

- coworker / own record, VIP, same surname: per read, when no care relationship explains it;
- no-relationship: unexplained reads (not even by peers), one alert per user episode (reads less than
  `episode_gap` apart); an episode that only touches fewer than `unverifiable_min` patients no feed has
  ever mentioned is counted, not raised (the ADT feed has gaps; one read of an unknown patient is no evidence);
- after-hours burst: ≥ `burst_min` distinct patients read without a relationship within `burst_window`,
  outside the user's usual hours (declared in the directory, else learned from their explained reads, else
  their role's, else the site's);
- volume: distinct patients in a work session (reads less than `session_gap` apart) against the robust
  z-score of the role's latest `volume_history` sessions (everyone's while the role has fewer than
  `volume_min_samples`).

Break-the-glass reads (purpose of use BTG/ETREAT) declare an emergency: the per-read rules fire one level
lower, an episode of only such reads is `low` (a review item, not a detection), and they count towards
bursts and volume like any read. Alert titles name the user and the rule, never a patient; patient ids sit
in `details["patients"]` and the description for the local analyst (sharing scrubs descriptions).
"""

from __future__ import annotations

from collections import Counter, deque
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from healthswarm.detect.attack import AttackCatalog, catalog
from healthswarm.detect.entities import ASSET_FIELDS
from healthswarm.detect.privacy.baseline import HourProfile, VolumeStats, hours_text, widen
from healthswarm.detect.privacy.directory import Directory, StaffMember, fold
from healthswarm.detect.privacy.relationships import CareRelationships, Explanation
from healthswarm.model import LEVELS, MAX_ALERT_EVENTS, Alert, Event, EventRef
from healthswarm.model.words import counted

#: FHIR interactions that show a record to the user.
READ_ACTIONS = frozenset({"read", "vread", "search", "search-type", "history", "history-instance", "$everything",
                          "$export", "$summary", "$document"})
RULES = ("no-relationship", "coworker", "same-surname", "vip", "after-hours-burst", "volume")


@dataclass
class PrivacyConfig:
    decision_delay: timedelta = timedelta(hours=8)
    peer_window: timedelta = timedelta(hours=8)
    peer_min: int = 1
    episode_gap: timedelta = timedelta(hours=1)
    burst_window: timedelta = timedelta(minutes=30)
    burst_min: int = 8
    hours_min_reads: int = 30  # a user's own hour profile counts from this many explained reads
    hours_min_share: float = 0.02
    hours_margin: int = 1
    session_gap: timedelta = timedelta(hours=4)
    volume_min_samples: int = 5
    volume_history: int = 2_000  # the latest sessions of a role (and of everyone) its median is taken over
    volume_z: float = 4.0
    volume_floor: int = 15
    common_surname_share: float = 0.02  # same-surname ignores surnames this common among known patients
    common_surname_min: int = 5
    unverifiable_min: int = 3  # episodes of only patients no feed knows need this many: a feed gap is no evidence
    prune_reads: int = 10_000  # reads between two prunes of the care relationships (`_access`)


@dataclass
class Access:
    ref: EventRef
    audit_id: str
    member: StaffMember
    patient: str
    at: datetime
    btg: bool
    explanation: Explanation | None = None
    # where the read came from and the display name the EHR logged: what other detectors' alerts name, so the
    # correlator can join a privacy alert with theirs (same workstation, same user)
    where: dict[str, str] = field(default_factory=dict)


WHERE_FIELDS = (*ASSET_FIELDS, "source.ip", "user.name")


@dataclass
class _Group:
    """Reads collected for one alert: an episode, a burst or a session."""

    reads: list[Access] = field(default_factory=list)
    patients: set[str] = field(default_factory=set)
    active: bool = False  # bursts: the threshold was reached

    def add(self, access: Access) -> None:
        self.reads.append(access)
        self.patients.add(access.patient)

    @property
    def last(self) -> datetime:
        return self.reads[-1].at


def _lower(level: str) -> str:
    return LEVELS[max(LEVELS.index(level) - 1, 0)]


class PrivacyMonitor:
    name = "privacy"

    def __init__(self, directory: Directory, config: PrivacyConfig | None = None,
                 relationships: CareRelationships | None = None, attack: AttackCatalog | None = None) -> None:
        self.directory = directory
        self.config = config or PrivacyConfig()
        self.care = relationships or CareRelationships(directory)
        attack = attack or catalog()
        self._techniques = (attack.technique("T1213"),)
        self._tactics = (attack.tactic("TA0009"),)
        self.counts: Counter[str] = Counter()
        self._now: datetime | None = None
        self._pending: deque[Access] = deque()
        self._peers: dict[str, deque[tuple[datetime, str]]] = {}
        self._episodes: dict[str, _Group] = {}
        self._bursts: dict[str, _Group] = {}
        self._sessions: dict[str, _Group] = {}
        self._hours: dict[str, HourProfile] = {}
        self._role_hours: dict[str, HourProfile] = {}
        self._site_hours = HourProfile()
        self._volume: dict[str, VolumeStats] = {}
        self._all_volume = VolumeStats(self.config.volume_history)
        self._reads_low: list[datetime] = []  # the oldest read of the last two spans of `prune_reads` reads
        self._span_low: datetime | None = None  # … and of the span under way
        self._span_reads = 0

    # --- the Detector protocol ---------------------------------------------------------------------------------
    def detect(self, event: Event) -> list[Alert]:
        observer = event.fields.get("observer.type")
        original = event.original
        if observer == "hl7":
            # the parser's MSH/EVN/PID/PV1 fields; the message text is not read again
            self.care.add_hl7_event(event.fields, event.timestamp)
        elif isinstance(original, dict) and original.get("resourceType") in ("Encounter", "CareTeam", "Patient"):
            self.care.add_fhir(original)
        elif observer == "fhir":
            self._access(event)
        return self._advance(event.timestamp)

    def flush(self) -> list[Alert]:
        alerts: list[Alert] = []
        while self._pending:
            alerts += self._decide(self._pending.popleft())
        for user in list(self._episodes):
            alerts += self._close_episode(user)
        for user in list(self._bursts):
            alerts += self._close_burst(user)
        for user, session in sorted(self._sessions.items(), key=lambda kv: kv[1].last):
            alerts += self._close_session(user, session)
        self._sessions.clear()
        return alerts

    def add_care(self, resource: Any) -> bool:
        """A FHIR Encounter, CareTeam or Patient from the care feed (the AuditEvent parser does not take them)."""
        return self.care.add_fhir(resource)

    # --- intake ------------------------------------------------------------------------------------------------
    def _access(self, event: Event) -> None:
        fields = event.fields
        action, patient, user = fields.get("event.action"), fields.get("patient.id"), fields.get("user.id")
        if action not in READ_ACTIONS or not patient:
            self.counts["audit events without a patient read"] += 1
            return
        if fields.get("event.outcome") == "failure":
            self.counts["failed reads"] += 1
            return
        member = self.directory.lookup(str(user or ""))
        if member is None:
            self.counts["reads by staff not in the directory"] += 1
            return
        if name := fields.get("patient.name"):
            family, _, given = str(name).partition(",")
            self.care.set_name(str(patient), family.strip(), given.strip())
        self.counts["reads"] += 1
        access = Access(EventRef(event.source, event.record, event.key, event.timestamp),
                        str(fields.get("event.id") or ""), member, str(patient), event.timestamp,
                        bool(fields.get("fhir.break_the_glass")),
                        where={k: str(fields[k]) for k in WHERE_FIELDS if fields.get(k)})
        self._pending.append(access)
        seen = self._peers.setdefault(access.patient, deque())
        seen.append((access.at, member.id))
        # reads of this patient still to be judged are at most about `decision_delay` older than this one and look a
        # `peer_window` either side: older entries can explain none of them (without this, a patient whose reads a
        # care relationship always explains kept every read of theirs, as only an unexplained read pruned)
        oldest = access.at - self.config.decision_delay - 2 * self.config.peer_window
        while seen[0][0] < oldest:
            seen.popleft()
        self._prune(access.at)

    def _prune(self, at: datetime) -> None:
        """Every `prune_reads` reads, forget the care relationships that can explain no read from the oldest of
        the last two spans of reads on. Reads, not the clock, set that bound: a feed that lags far behind the
        others (an audit backlog) keeps what its reads still need. A read older than both spans' oldest by more
        than the grace after a discharge may find its stay forgotten and be judged without it."""
        self._span_low = at if self._span_low is None else min(self._span_low, at)
        self._span_reads += 1
        if self._span_reads < self.config.prune_reads:
            return
        self._reads_low = [*self._reads_low[-1:], self._span_low]
        self._span_low, self._span_reads = None, 0
        if forgotten := self.care.prune(min(self._reads_low)):
            self.counts["care relationships forgotten"] += forgotten

    def _advance(self, now: datetime) -> list[Alert]:
        # the clock is the newest event of any source; a read from a source that lags behind it (the audit feed of a
        # backlog, say) is overdue when it comes, and is judged then, not when a still newer event arrives (they
        # piled up: 320,000 reads held, and judged all at once, in a drain of 1,500 copies of the bench's stream)
        advanced = self._now is None or now > self._now
        if advanced:
            self._now = now
        now = self._now  # type: ignore[assignment]
        alerts: list[Alert] = []
        cfg = self.config
        while self._pending and self._pending[0].at + cfg.decision_delay <= now:
            alerts += self._decide(self._pending.popleft())
        if not advanced:
            return alerts
        # groups close once the stream has moved past their gap (judged reads are at least the delay behind)
        horizon = now - cfg.decision_delay
        for user in [u for u, g in self._episodes.items() if g.last + cfg.episode_gap < horizon]:
            alerts += self._close_episode(user)
        for user in [u for u, g in self._bursts.items() if g.last + cfg.burst_window < horizon]:
            alerts += self._close_burst(user)
        closing = sorted(((u, g) for u, g in self._sessions.items() if g.last + cfg.session_gap < horizon),
                         key=lambda kv: kv[1].last)
        for user, session in closing:
            del self._sessions[user]
            alerts += self._close_session(user, session)
        return alerts

    # --- judging one read --------------------------------------------------------------------------------------
    def _peer_explained(self, access: Access) -> bool:
        window, me = self.config.peer_window, access.member
        seen = self._peers.get(access.patient, deque())
        while seen and seen[0][0] < access.at - 2 * window:  # older than any read still to be judged needs
            seen.popleft()
        colleagues = set()
        for at, staff_id in seen:
            if staff_id == me.id or abs(at - access.at) > window:
                continue
            other = self.directory.lookup(staff_id)
            if other is not None and other.wards & me.wards:
                colleagues.add(staff_id)
        return len(colleagues) >= self.config.peer_min

    def _decide(self, access: Access) -> list[Alert]:
        access.explanation = self.care.explain(access.member, access.patient, access.at)
        user = access.member.logins[0]
        alerts: list[Alert] = []
        explained = access.explanation is not None
        if explained or self._peer_explained(access):
            self._learn_hours(access)
            if access.btg:
                self.counts["break-the-glass reads with a relationship"] += 1
        else:
            alerts += self._per_read(access)
            if not alerts:
                episode = self._episodes.setdefault(user, _Group())
                episode.add(access)
            if access.btg:
                self.counts["break-the-glass reads without a relationship"] += 1
        if not explained:
            alerts += self._after_hours(user, access)
        self._sessions.setdefault(user, _Group()).add(access)
        return alerts

    def _learn_hours(self, access: Access) -> None:
        hour = access.at.hour
        self._hours.setdefault(access.member.logins[0], HourProfile()).add(hour)
        self._role_hours.setdefault(access.member.role, HourProfile()).add(hour)
        self._site_hours.add(hour)

    def _usual_hours(self, member: StaffMember) -> tuple[frozenset[int], str] | None:
        if member.hours:
            return member.hours, "declared in the staff directory"
        cfg = self.config
        for profile, whose in ((self._hours.get(member.logins[0]), "their own"),
                               (self._role_hours.get(member.role), f"the {member.role} role's"),
                               (self._site_hours, "the site's")):
            if profile is not None and profile.total >= cfg.hours_min_reads:
                return profile.usual(cfg.hours_min_share), f"learned from {whose} explained reads"
        return None

    # --- the rules ---------------------------------------------------------------------------------------------
    def _per_read(self, access: Access) -> list[Alert]:
        member, patient = access.member, access.patient
        family, given = self.care.names.get(patient, ("", ""))
        why = self.care.why_not(member, patient, access.at)
        found: list[tuple[str, str, str, str]] = []  # rule, level, title, reason
        staff = self.directory.as_patient(patient, family, given)
        if staff is not None:
            other, how = staff
            if other.id == member.id:
                found.append(("coworker", "medium", "Own patient record read", f"the user's own record ({how})"))
            else:
                label = other.logins[0] if other.logins else other.id
                shared = " (same ward)" if other.wards & member.wards else ""
                found.append(("coworker", "high", "Co-worker's patient record read",
                              f"the patient is staff member {label}{shared} ({how})"))
        if patient in self.directory.vip:
            found.append(("vip", "high", "VIP patient record read", "the patient is on the VIP list"))
        if (staff is None and family and fold(family) == fold(member.family)
                and not self._common_surname(family)):
            found.append(("same-surname", "medium", "Same-surname patient record read",
                          "the patient shares the user's surname (family member?)"))
        alerts = []
        for rule, level, title, reason in found:
            if access.btg:
                level = _lower(level)
            text = (f"{member.label} read Patient {patient} at {access.at:%Y-%m-%d %H:%M} UTC: {reason}; "
                    f"no care relationship — {why}" + ("; break-the-glass declared" if access.btg else ""))
            alerts.append(self._alert(rule, f"{title} without care relationship by {member.logins[0]}", level,
                                      [access], text, {"reason": reason}))
        return alerts

    def _common_surname(self, family: str) -> bool:
        count = self.care.surnames.get(fold(family), 0)
        total = max(len(self.care.names), 1)
        return count >= self.config.common_surname_min and count / total >= self.config.common_surname_share

    def _after_hours(self, user: str, access: Access) -> list[Alert]:
        usual = self._usual_hours(access.member)
        if usual is None or access.at.hour in widen(usual[0], self.config.hours_margin):
            return []
        burst = self._bursts.get(user)
        if burst is not None and access.at - burst.last > self.config.burst_window:
            alerts = self._close_burst(user)
            burst = None
        else:
            alerts = []
        if burst is None:
            burst = self._bursts[user] = _Group()
        burst.add(access)
        if not burst.active:
            cutoff = access.at - self.config.burst_window
            recent = [r for r in burst.reads if r.at >= cutoff]
            burst.reads = recent
            burst.patients = {r.patient for r in recent}
            burst.active = len(burst.patients) >= self.config.burst_min
        return alerts

    # --- groups → alerts ---------------------------------------------------------------------------------------
    def _close_episode(self, user: str) -> list[Alert]:
        episode = self._episodes.pop(user)
        reads, member = episode.reads, episode.reads[0].member
        if len(episode.patients) < self.config.unverifiable_min and not any(map(self.care.known, episode.patients)):
            self.counts["unverifiable reads (patient in no feed)"] += len(reads)
            return []
        btg = sum(r.btg for r in reads)
        level = "low" if btg == len(reads) else "high" if len(episode.patients) >= 10 else "medium"
        first, last = reads[0], reads[-1]
        patients = sorted(episode.patients)
        shown = ", ".join(patients[:5]) + (f" and {len(patients) - 5} more" if len(patients) > 5 else "")
        usual = self._usual_hours(member)
        when = f"{first.at:%H:%M}" + (f"–{last.at:%H:%M}" if last.at != first.at else "") + " UTC"
        if usual is not None and first.at.hour not in widen(usual[0], self.config.hours_margin):
            when += f", outside the usual {hours_text(usual[0])} hours ({usual[1]})"
        text = (f"{member.label} read {counted(len(patients), 'patient record')} ({shown}) without a care "
                f"relationship — {self.care.why_not(member, first.patient, first.at)}; no ward colleague read "
                f"{'it' if len(patients) == 1 else 'them'}; {when}"
                + (f"; {btg} of {len(reads)} reads declared break-the-glass" if btg else ""))
        title = (f"Break-the-glass reads without care relationship by {user}" if level == "low"
                 else f"Patient records read without care relationship by {user}")
        return [self._alert("no-relationship" if level != "low" else "break-the-glass", title, level, reads, text,
                            {"break_the_glass_reads": btg})]

    def _close_burst(self, user: str) -> list[Alert]:
        burst = self._bursts.pop(user)
        if not burst.active:
            return []
        reads, member = burst.reads, burst.reads[0].member
        usual = self._usual_hours(member)
        hours = f"outside the usual {hours_text(usual[0])} hours ({usual[1]})" if usual else "after hours"
        minutes = max((reads[-1].at - reads[0].at).total_seconds() / 60, 1)
        btg = sum(r.btg for r in reads)
        text = (f"{member.label} read {len(burst.patients)} patient records without a care relationship in "
                f"{minutes:.0f} min, {reads[0].at:%H:%M}–{reads[-1].at:%H:%M} UTC, {hours}"
                + (f"; {counted(btg, 'read')} declared break-the-glass" if btg else ""))
        return [self._alert("after-hours-burst", f"After-hours burst of patient record reads by {user}", "high",
                            reads, text, {"usual_hours": hours_text(usual[0]) if usual else "",
                                          "break_the_glass_reads": btg})]

    def _close_session(self, user: str, session: _Group) -> list[Alert]:
        member, count = session.reads[0].member, len(session.patients)
        cfg = self.config
        stats = self._volume.get(member.role)
        if stats is None:
            stats = self._volume[member.role] = VolumeStats(cfg.volume_history)
        population, whose = (stats, f"{member.role} role") if len(stats) >= cfg.volume_min_samples \
            else (self._all_volume, "all roles")
        alerts: list[Alert] = []
        if len(population) >= cfg.volume_min_samples:
            z, median, _ = population.robust_z(count)
            if count >= cfg.volume_floor and z >= cfg.volume_z:
                unexplained = [r for r in session.reads if r.explanation is None]
                level = "high" if len(unexplained) >= 10 else "medium" if unexplained else "low"
                reads = unexplained or session.reads
                text = (f"{member.label} read {count} distinct patient records in one work session "
                        f"({session.reads[0].at:%Y-%m-%d %H:%M}–{session.last:%H:%M} UTC); the {whose} median is "
                        f"{median:g} (robust z {z:.1f} over {len(population)} sessions); "
                        f"{len(unexplained)} reads had no care relationship")
                alerts.append(self._alert("volume", f"Unusual patient record volume for role {member.role} by {user}",
                                          level, reads, text, {"distinct_patients": count, "median": median,
                                                               "robust_z": round(z, 2)}))
                return alerts
        stats.add(count)  # only sessions that raised nothing teach what is normal
        self._all_volume.add(count)
        return alerts

    def _alert(self, rule: str, title: str, level: str, reads: list[Access], description: str,
               extra: dict[str, Any]) -> Alert:
        member = reads[0].member

        def seen(name: str) -> list[str]:
            return sorted({r.where[name] for r in reads if name in r.where})

        entities = {"user": [member.logins[0], *seen("user.name")], "ip": seen("source.ip")}
        details = {
            "user": member.logins[0], "staff_id": member.id, "role": member.role, "wards": sorted(member.wards),
            "patients": sorted({r.patient for r in reads}), "reads": len(reads),
            "audit_event_ids": [r.audit_id for r in reads if r.audit_id],
            "explanations": sorted({r.explanation.kind for r in reads if r.explanation}),
            "entities": {kind: values for kind, values in entities.items() if values}, **extra,
        }
        return Alert(
            detector=self.name, rule_id=f"privacy:{rule}", title=title, level=level, timestamp=reads[-1].at,
            assets=tuple(sorted({a for name in ASSET_FIELDS for a in seen(name)})),
            events=tuple(r.ref for r in reads[-MAX_ALERT_EVENTS:]), techniques=self._techniques,
            tactics=self._tactics,
            tags=("attack.t1213", "attack.collection", "privacy.insider"), description=description, details=details,
        )
