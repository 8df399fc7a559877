"""Per-asset behaviour baselines over network events (streaming, unsupervised).

For every source asset (inventory id when the event was resolved, else the source address) it counts
who the asset talks to, over which services, how much and at what hours (`profile.AssetProfile`).
After a warm-up (events and hours, both configurable) it scores each new event:

- a service the asset never spoke (a pump opening SMB, a workstation starting DICOM),
- a destination it never talked to,
- a volume far above its usual (z-score of log bytes),
- an hour of day at which it was never active,

and `observe` turns scores above the threshold into Alerts that explain themselves, within an alert
budget per asset and UTC day (what is over budget is counted, not raised). Medical devices (inventory
kinds in MEDICAL_DEVICE_KINDS) and DICOM from workstations rank higher: their baselines are narrow
and a deviation can touch patient safety.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np

from healthswarm.detect.learn.base import Model
from healthswarm.detect.learn.profile import AssetProfile, display, service_of
from healthswarm.detect.learn.registry import register
from healthswarm.detect.learn.table import Table
from healthswarm.model import MEDICAL_DEVICE_KINDS, Alert, Asset, AttackRef, Event, EventRef

#: Profiles of sources outside the inventory (raw addresses: scanners, the internet) kept at most; past it the
#: tenth seen longest ago is forgotten, so a long run's memory stays bounded however many addresses come by.
MAX_UNKNOWN_SOURCES = 10_000
WORKSTATION_KINDS = frozenset({"workstation", "clinical-workstation", "laptop"})
#: Services whose first use by an asset is a lateral-movement technique.
SERVICE_TECHNIQUES = {"smb": "T1021.002", "rdp": "T1021.001", "ssh": "T1021.004", "vnc": "T1021.005",
                      "telnet": "T1021", "msrpc": "T1021.003"}


@dataclass(slots=True)
class BaselineConfig:
    warmup_events: int = 50          # an asset alerts only after this many events …
    warmup_hours: float = 24.0       # … spread over at least this many hours
    budget_per_day: int = 5          # alerts per asset and UTC day; the rest are counted as suppressed
    threshold: float = 0.5           # score from which `observe` raises an alert
    volume_z: float = 4.0            # bytes this many standard deviations (log scale) above usual
    hour_min_events: int = 200       # an unseen hour counts only once the asset has this many events


@dataclass(frozen=True, slots=True)
class Deviation:
    reason: str        # new-service, new-destination, new-service-and-destination, volume, hour
    score: float
    level: str
    text: str


def _when(x: Mapping[str, Any]) -> datetime | None:
    value = x.get("@timestamp")
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if isinstance(value, int | float):
        return datetime.fromtimestamp(value, UTC)
    if isinstance(value, str) and value:
        try:
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return None
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    return None


def _size(x: Mapping[str, Any]) -> float | None:
    value = x.get("source.bytes", x.get("network.bytes"))
    try:
        return float(value) if value is not None else None
    except (TypeError, ValueError):
        return None


@register
class AssetBaseline(Model):
    kind = "asset-baseline"
    # also on the class: a model pickled before they existed loads with these
    _latest_day = ""
    _unknown = 0

    def __init__(self, config: BaselineConfig | None = None, assets: Iterable[Asset] = ()) -> None:
        super().__init__()
        self.config = config or BaselineConfig()
        self.profiles: dict[str, AssetProfile] = {}
        self.kinds: dict[str, str] = {}
        self.names: dict[str, str] = {}
        self.alerts_raised = 0
        self.suppressed: Counter[str] = Counter()
        self._spent: Counter[tuple[str, str]] = Counter()  # alerts raised per (source, UTC day), the last 2 days
        self._latest_day = ""
        self._unknown = 0  # profiles of sources outside the inventory
        self.add_assets(assets)
        self.card.params = asdict(self.config)
        self.card.features = ["source.asset.id|source.ip", "destination.asset.id|destination.ip",
                              "network.protocol|destination.port+network.transport", "source.bytes",
                              "@timestamp (hour)"]

    def add_assets(self, assets: Iterable[Asset]) -> None:
        for asset in assets:
            self.kinds[asset.id] = asset.kind
            self.names[asset.id] = asset.name or asset.id

    # -- the protocol -----------------------------------------------------------------------------

    def _parse(self, x: Mapping[str, Any]) -> tuple[str, str, str, datetime, float | None] | None:
        src = x.get("source.asset.id") or x.get("source.ip")
        dst = x.get("destination.asset.id") or x.get("destination.ip")
        when = _when(x)
        if not src or not dst or when is None:
            return None
        return str(src), str(dst), service_of(x), when, _size(x)

    def learn_one(self, x: Mapping[str, Any], y: Any = None) -> None:
        parsed = self._parse(x)
        if parsed is None:
            return
        src, dst, service, when, size = parsed
        profile = self.profiles.get(src)
        if profile is None:
            profile = self.profiles[src] = AssetProfile()
            if src not in self.kinds:
                self._unknown += 1
                if self._unknown > MAX_UNKNOWN_SOURCES:
                    self._forget_unknown()
        profile.update(dst, service, when.hour, size, when.timestamp())

    def _forget_unknown(self) -> None:
        """Drop the tenth of the profiles of sources outside the inventory seen longest ago."""
        unknown = sorted((p.last_seen, src) for src, p in self.profiles.items() if src not in self.kinds)
        for _, src in unknown[: max(1, len(unknown) // 10)]:
            del self.profiles[src]
            self.suppressed.pop(src, None)
        self._unknown = len(unknown) - max(1, len(unknown) // 10)

    def learn_many(self, X: Table, y: Sequence[Any] | np.ndarray | None = None) -> None:
        for row in X.rows():
            self.learn_one(row)

    def score_one(self, x: Mapping[str, Any]) -> float:
        return max((d.score for d in self.deviations(x)), default=0.0)

    # -- explaining and alerting ----------------------------------------------------------------

    def warm(self, asset: str) -> bool:
        p = self.profiles.get(asset)
        return (p is not None and p.events >= self.config.warmup_events
                and p.last_seen - p.first_seen >= self.config.warmup_hours * 3600)

    def deviations(self, x: Mapping[str, Any]) -> list[Deviation]:
        """What is new or unusual about x for its source asset (nothing while the asset warms up)."""
        parsed = self._parse(x)
        if parsed is None:
            return []
        src, dst, service, when, size = parsed
        if not self.warm(src):
            return []
        p = self.profiles[src]
        kind = self.kinds.get(src, "")
        medical = kind in MEDICAL_DEVICE_KINDS
        name, peer, proto = self.names.get(src, src), self.names.get(dst, dst), display(service)
        baseline = p.describe(self.names)
        out: list[Deviation] = []
        new_service, new_peer = service not in p.services, dst not in p.peers
        if new_service or new_peer:
            if new_service and new_peer:
                reason, score, text = "new-service-and-destination", 0.8, f"first time {name} opened {proto} to {peer}"
            elif new_service:
                reason, score, text = "new-service", 0.7, f"first time {name} spoke {proto} (to known peer {peer})"
            else:
                reason, score, text = "new-destination", 0.6, f"first time {name} talked {proto} to {peer}"
            level = "medium"
            if medical:
                score, level = score + 0.15, "high"
            if kind in WORKSTATION_KINDS and service == "dicom" and new_service:
                score, level = score + 0.15, "high"
                text = f"workstation {name} started speaking DICOM (to {peer})"
            out.append(Deviation(reason, min(score, 1.0), level, f"{text}; its baseline: {baseline}"))
        z = p.volume_z(size)
        if z >= self.config.volume_z:
            out.append(Deviation("volume", min(1.0, 0.5 + z / 20), "high" if medical else "medium",
                                 f"{name} sent {size:,.0f} bytes over {proto} to {peer}, {z:.1f} standard "
                                 f"deviations above its usual (about {np.expm1(p.volume_mean):,.0f} bytes)"))
        if p.events >= self.config.hour_min_events and p.hours[when.hour] == 0:
            out.append(Deviation("hour", 0.3, "low", f"{name} active at {when.hour:02d}h UTC, never before in "
                                                     f"{p.events} events"))
        return out

    def observe(self, event: Event) -> Alert | None:
        """Score the event, raise an alert if it deviates (within budget), then learn from it."""
        x = {**event.fields, "@timestamp": event.timestamp}
        found = [d for d in self.deviations(x) if d.score >= self.config.threshold]
        alert = self._alert(event, x, found) if found else None
        self.learn_one(x)
        return alert

    def _alert(self, event: Event, x: Mapping[str, Any], found: list[Deviation]) -> Alert | None:
        parsed = self._parse(x)
        assert parsed is not None
        src, dst, service, when, _ = parsed
        day = when.date().isoformat()
        if day > self._latest_day:  # a new UTC day: budgets of the days before yesterday are spent for good
            self._latest_day = day
            yesterday = (when.date() - timedelta(days=1)).isoformat()
            self._spent = Counter({k: n for k, n in self._spent.items() if k[1] >= yesterday})
        if self._spent[(src, day)] >= self.config.budget_per_day:
            self.suppressed[src] += 1
            return None
        self._spent[(src, day)] += 1
        self.alerts_raised += 1
        top = max(found, key=lambda d: d.score)
        technique = SERVICE_TECHNIQUES.get(service) if top.reason.startswith("new-service") else None
        assets = tuple(a for a in (x.get("source.asset.id"), x.get("destination.asset.id")) if a)
        return Alert(
            detector=self.card.name or self.kind, rule_id=f"{self.kind}/{top.reason}",
            title=f"{self.names.get(src, src)}: {top.reason.replace('-', ' ')}", level=top.level,
            timestamp=event.timestamp,
            events=(EventRef(event.source, event.record, event.key, event.timestamp),),
            techniques=(AttackRef(technique),) if technique else (), assets=assets,
            tags=("healthswarm.learn", self.kind), description="; ".join(d.text for d in found),
            details={"score": top.score, "reasons": [d.reason for d in found], "asset": src, "peer": dst,
                     "service": service, "kind": self.kinds.get(src, "")},
        )
