"""HL7 v2 interface analytics: what each interface normally carries, and the floods and probes it does not.

An interface is named by its receiving end (`hl7.receiving_application@hl7.receiving_facility`, else the
destination address): everything that feeds one patient index is one interface. Per interface it learns
the senders (`sending_application@sending_facility`, else the source address) and, per sender, the
message types; and the rate of flood-type messages (ADT by default) per window, as an exponentially
weighted mean. Per source (address, else the stream) it learns how many messages are malformed.

After warm-up it raises:
- a sender never seen on the interface (a new facility or application pushing messages into the EHR);
- a message type never seen from that sender (an ADT^A40 merge on a feed that only ever admitted);
- a flood: at least `flood_min` messages in `flood_window` seconds and `flood_factor` times the learned
  rate (one alert per flood; the flood's own windows do not raise the learned rate);
- probing: at least `probe_min` malformed messages or parser rejects from one source in `probe_window`
  and `probe_factor` times its learned rate.

A novelty alerts once and is then learned, so a new interface that is legitimate costs one alert.
Parser rejects reach the detector through `observe_reject` (or as events with `event.kind` "reject").
"""

from __future__ import annotations

import re
from collections import Counter, deque
from dataclasses import dataclass, field
from typing import Any

from healthswarm.detect.attack import AttackCatalog
from healthswarm.detect.healthcare.alerts import MAX_EVIDENCE, AlertSink, Rule, listing, text
from healthswarm.detect.healthcare.windows import Burst, KeyTable, Warmup, remember
from healthswarm.model import Alert, Event, Reject

NEW_SENDER = Rule("healthcare.hl7.new-sender", "HL7 Sender Never Seen on This Interface", "medium",
                  ("T1565.002",))
NEW_TYPE = Rule("healthcare.hl7.new-message-type", "HL7 Message Type Never Seen From This Sender", "medium",
                ("T1565.002",))
FLOOD = Rule("healthcare.hl7.flood", "HL7 Message Flood Above the Interface's Learned Rate", "high",
             ("T1499.002", "T1565.002"))
PROBE = Rule("healthcare.hl7.malformed-probing", "Malformed HL7 Messages From One Source (Probing)", "medium",
             ("T1046",))

# an HL7 v2 message type as MSH-9 writes it: ADT, ADT^A01, ORU^R01 (the structure is not part of it)
_MESSAGE_TYPE = re.compile(r"^[A-Z][A-Z0-9]{2}(\^[A-Z0-9]{3})?$")


@dataclass(slots=True)
class Hl7Config:
    warmup_events: int = 500        # learning only until this many HL7 events …
    warmup_seconds: float = 3600.0  # … or this much event time, whichever comes first
    flood_window: float = 60.0      # seconds of the sliding window (and of the learned rate's buckets)
    flood_min: int = 50             # a flood needs at least this many messages in the window …
    flood_factor: float = 10.0      # … and this many times the interface's learned rate per window
    flood_alpha: float = 0.05       # weight of the newest bucket in the learned rate
    flood_prefixes: tuple[str, ...] = ("ADT",)  # message types the flood rule counts (prefix of MSH-9)
    probe_window: float = 300.0
    probe_min: int = 5              # malformed messages or rejects from one source in the window …
    probe_factor: float = 5.0       # … and this many times its learned rate
    budget_per_hour: int = 20       # alerts per hour of event time; the rest are counted as suppressed
    max_keys: int = 10_000          # interfaces and sources remembered (least recently used forgotten)
    max_values: int = 256           # senders per interface, message types per sender


@dataclass(slots=True)
class _Interface:
    flood: Burst
    senders: dict[str, set[str]] = field(default_factory=dict)
    recent: deque[Event] = field(default_factory=lambda: deque(maxlen=MAX_EVIDENCE))


@dataclass(slots=True)
class _Source:
    probe: Burst
    recent: deque[Event] = field(default_factory=lambda: deque(maxlen=MAX_EVIDENCE))


def endpoint(fields: dict[str, Any], side: str) -> str:
    """`APP@FACILITY` of one side of a message ('APP', '@FACILITY' when half is missing), else its address."""
    app, facility = text(fields, f"hl7.{side}_application"), text(fields, f"hl7.{side}_facility")
    if app or facility:
        return f"{app}@{facility}" if facility else app
    return text(fields, "source.ip" if side == "sending" else "destination.ip")


def malformation(fields: dict[str, Any]) -> str:
    """Why an accepted message is malformed (what a well-formed sender always fills), '' when it is not."""
    if text(fields, "event.kind") == "reject":
        return text(fields, "error.message") or "rejected by the parser"
    kind = text(fields, "hl7.message_type")
    if not kind:
        return "MSH-9 message type empty"
    if not _MESSAGE_TYPE.match(kind):
        return f"MSH-9 message type {kind[:30]!r} not of the form ABC^A01"
    if not text(fields, "hl7.control_id"):
        return "MSH-10 control id empty"
    if not text(fields, "hl7.version"):
        return "MSH-12 version empty"
    return ""


def reject_event(reject: Reject) -> Event:
    """A parser reject as an event the detector can count: timed by its receipt, with the sender when the
    bytes still start with a readable MSH segment."""
    fields: dict[str, Any] = {"event.kind": "reject", "observer.type": "hl7", "error.message": reject.reason}
    head = reject.raw[:512].decode("utf-8", "replace").lstrip("\x0b\r\n ")
    if head.startswith("MSH") and len(head) > 3:
        parts = re.split(r"[\r\n]", head, maxsplit=1)[0].split(head[3])
        for index, name in ((2, "sending_application"), (3, "sending_facility")):
            if len(parts) > index and parts[index]:
                fields[f"hl7.{name}"] = parts[index].split("^")[0][:64]
    return Event(timestamp=reject.received, fields=fields, original=reject.raw[:512].decode("utf-8", "replace"),
                 source=reject.source, record=reject.record, position=reject.position)


class Hl7Analytics:
    name = "hl7-analytics"

    def __init__(self, config: Hl7Config | None = None, attack: AttackCatalog | None = None) -> None:
        self.config = config or Hl7Config()
        c = self.config
        self.sink = AlertSink(self.name, c.budget_per_hour, attack)
        self.stats = self.sink.stats
        self.warmup = Warmup(c.warmup_events, c.warmup_seconds)
        self.interfaces: KeyTable[str, _Interface] = KeyTable(
            lambda: _Interface(Burst(c.flood_window, c.flood_alpha)), c.max_keys)
        self.sources: KeyTable[str, _Source] = KeyTable(
            lambda: _Source(Burst(c.probe_window, c.flood_alpha)), c.max_keys)

    def detect(self, event: Event) -> list[Alert]:
        fields = event.fields
        if not isinstance(fields, dict) or fields.get("observer.type") != "hl7":
            return []
        self.stats["events"] += 1
        t = event.timestamp.timestamp()
        armed = self.warmup.observe(t)
        alerts = self._probe(event, t, armed)
        if text(fields, "event.kind") == "reject":
            return alerts
        receiver, sender = endpoint(fields, "receiving"), endpoint(fields, "sending")
        if not receiver or not sender:
            self.stats["skipped:no-interface"] += 1
            return alerts
        interface = self.interfaces.get(receiver)
        interface.recent.append(event)
        alerts += self._novelty(event, interface, receiver, sender, armed)
        kind = text(fields, "hl7.message_type")
        if kind.startswith(self.config.flood_prefixes):
            alerts += self._flood(event, interface, receiver, kind, t, armed)
        return alerts

    def observe_reject(self, reject: Reject) -> list[Alert]:
        """Count an HL7 parser reject towards its source's malformed-message rate."""
        return self.detect(reject_event(reject)) if reject.format == "hl7" else []

    def flush(self) -> list[Alert]:
        return []  # every rule decides on the event that crosses its threshold

    def _novelty(self, event: Event, interface: _Interface, receiver: str, sender: str, armed: bool) -> list[Alert]:
        kind = text(event.fields, "hl7.message_type") or "(no type)"
        cap = self.config.max_values
        types = interface.senders.get(sender)
        if types is None:
            known = set(interface.senders)
            if len(interface.senders) >= cap:
                self.stats["not-learned:senders-full"] += 1
            else:
                interface.senders[sender] = {kind}
            if not armed:
                return []
            why = (f"first HL7 message from {sender} into {receiver} ({kind}); this interface's senders so far: "
                   f"{listing(known)}" if known else
                   f"first HL7 message to {receiver} (from {sender}, {kind}): an interface not seen in warm-up")
            return self.sink.emit(NEW_SENDER, [event], why, {
                "interface": receiver, "sender": sender, "message_type": kind, "baseline_senders": sorted(known)})
        if kind in types:
            return []
        baseline = set(types)
        if not remember(types, kind, cap):
            self.stats["not-learned:types-full"] += 1
        if not armed:
            return []
        why = f"first {kind} from {sender} on interface {sender} → {receiver}; its baseline: {listing(baseline)}"
        return self.sink.emit(NEW_TYPE, [event], why, {
            "interface": receiver, "sender": sender, "message_type": kind, "baseline_types": sorted(baseline)})

    def _flood(self, event: Event, interface: _Interface, receiver: str, kind: str, t: float,
               armed: bool) -> list[Alert]:
        c = self.config
        fired, count, expected = interface.flood.step(t, armed, c.flood_min, c.flood_factor)
        if not fired:
            return []
        prefix = "/".join(c.flood_prefixes)
        senders = Counter(endpoint(e.fields, "sending") for e in interface.recent)
        why = (f"{count} {prefix} messages within {c.flood_window:g} s into {receiver} (threshold "
               f"{c.flood_min}; its learned rate {expected:.2f} per {c.flood_window:g} s); senders of the last "
               f"{len(interface.recent)}: " + ", ".join(f"{s} ({n})" for s, n in senders.most_common(3)))
        return self.sink.emit(FLOOD, list(interface.recent), why, {
            "interface": receiver, "count": count, "window_s": c.flood_window, "learned_rate": round(expected, 4),
            "senders": dict(senders), "last_type": kind})

    def _probe(self, event: Event, t: float, armed: bool) -> list[Alert]:
        problem = malformation(event.fields)
        if not problem:
            return []
        self.stats["malformed"] += 1
        c = self.config
        key = text(event.fields, "source.ip") or event.source or endpoint(event.fields, "sending") or "?"
        source = self.sources.get(key)
        source.recent.append(event)
        fired, count, expected = source.probe.step(t, armed, c.probe_min, c.probe_factor)
        if not fired:
            return []
        why = (f"{count} malformed or rejected HL7 messages from {key} within {c.probe_window:g} s (threshold "
               f"{c.probe_min}; its learned rate {expected:.2f} per {c.probe_window:g} s); latest: {problem[:160]}")
        return self.sink.emit(PROBE, list(source.recent), why, {
            "source": key, "count": count, "window_s": c.probe_window, "learned_rate": round(expected, 4),
            "last_problem": problem[:300]})
