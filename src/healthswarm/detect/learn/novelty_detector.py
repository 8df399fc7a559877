"""The novelty and hybrid models as pipeline detectors, with thresholds from a false-alarm budget.

The budget is alerts per asset and UTC day (`budget_per_day`, the pipeline's model budget). A model's
calibration says what share of benign flows passes each threshold, so an asset that sees E flows a day
gets the threshold that `budget_per_day / E` of benign flows pass: a busy server gets a stricter one
than a quiet pump, and each expects at most about `budget_per_day` false alarms a day. E is the asset's
flow count of the previous day it was seen, or of today so far if higher. The share is never looser
than the model's own budget (its training `budget`, e.g. 1 % of benign flows). The asset of a flow is
its destination's (`destination.asset.id`, else the source's, else the destination address): the one
a flood or scan is aimed at. On top, the pipeline's cap per source, class and day still applies.

Feature rows are built from the event as the flow classifier's detector builds them (CICFlowMeter or
NSL-KDD columns in `event.original`; skips counted by reason). Alerts of a known class name it with its
ATT&CK techniques (as the flow classifier's do); novel flows say which features were unusual and how
far outside the benign range they lie. A hybrid with source windows (`windows.py`) also keeps each
source's last flows: when the forest names nothing and the window is unlike benign sources', the alert
(`<kind>/novel-source`) names the window features that were unusual and the ATT&CK techniques the
behaviour implies (scan T1046, flood T1498/T1499, against an ICS port also T0846/T0814).

When the calibrated novelty rank of the flows rises and stays up (Page-Hinkley), an alert of detector
`drift` says the model no longer fits the traffic and which features moved (`drift.py`).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from typing import Any

import numpy as np

from healthswarm.detect.learn.datasets.cicflowmeter import RATE_COLUMNS
from healthswarm.detect.learn.drift import FeatureDrift, PageHinkley, drift_alert
from healthswarm.detect.learn.flow_detector import _T, _TACTICS, FlowDetector
from healthswarm.detect.learn.novelty import NOVEL, HybridModel, NoveltyModel, describe_unusual, signed_log
from healthswarm.detect.learn.pipeline import DEFAULT_BUDGET, AlertBudget, ModelStats
from healthswarm.detect.learn.windows import FEATURES, INPUTS, SourceWindows, techniques
from healthswarm.model import Alert, AttackRef, Event, EventRef


class AssetBudget:
    """The share of benign flows an asset may have flagged today, from alerts per asset and day."""

    def __init__(self, per_day: float, ceiling: float) -> None:
        self.per_day = per_day
        self.ceiling = ceiling
        self._days: dict[str, tuple[date, int, int]] = {}  # asset → (day, flows today, flows on its last day)

    def share(self, asset: str, day: date) -> float:
        current, today, previous = self._days.get(asset, (day, 0, 0))
        if current != day:
            current, today, previous = day, 0, today
        today += 1
        self._days[asset] = (current, today, previous)
        return min(self.ceiling, self.per_day / max(today, previous))


def asset_of(fields: Mapping[str, Any]) -> str:
    for key in ("destination.asset.id", "source.asset.id", "destination.ip", "source.ip"):
        if value := fields.get(key):
            return str(value)
    return "?"


class NoveltyDetector(FlowDetector):
    """Observes flow events with a novelty or hybrid model (see the module docstring)."""

    def __init__(self, model: NoveltyModel | HybridModel, budget_per_day: int = DEFAULT_BUDGET) -> None:
        if model.spec is None:
            raise ValueError("the model has not been trained")
        self.hybrid = model if isinstance(model, HybridModel) else None
        self.novelty = model.novelty if isinstance(model, HybridModel) else model
        self.kind = model.kind
        self.model = model.classifier if isinstance(model, HybridModel) else model  # type: ignore[assignment]
        self.name = model.card.name or model.kind
        self.layout = model.layout
        self.stats = ModelStats()
        self.budget = AlertBudget(budget_per_day)
        self.assets = AssetBudget(budget_per_day, float(model.params["budget"]))
        spec = model.spec
        self._numeric = list(spec.numeric)
        self._codes = [(name, {v: i for i, v in enumerate(vocab)}) for name, vocab in spec.categorical.items()]
        self._features = [*self._numeric, *(name for name, _ in self._codes)]
        self._repair = RATE_COLUMNS if self.layout == "cicflowmeter" else frozenset()
        self._shapes: dict[tuple[str, ...], list[str] | str] = {}
        self._top = ([int(i) for i in np.argsort(-self.hybrid.classifier.importances(), kind="stable")[:3]]
                     if self.hybrid else [])
        self.windows = self.hybrid.windows if self.hybrid is not None else None
        self.sources = SourceWindows()
        self._window_inputs = [self._numeric.index(c) for c in INPUTS] if self.windows is not None else []
        self.drift = PageHinkley()
        profile = self.novelty.profile
        self.moved = FeatureDrift(profile.names, profile.centre, profile.spread)
        self.drift_alerts = 0
        self._pending: list[Alert] = []

    def observe(self, event: Event) -> Alert | None:
        row = self.features_of(event)
        if isinstance(row, str):
            self.stats.skipped[row] += 1
            return None
        self.stats.scored += 1
        share = self.assets.share(asset_of(event.fields), event.timestamp.date())
        raw = float(self.novelty.raw_rows(row.reshape(1, -1))[0])
        rank = float(self.novelty.calibration.rank(np.asarray([raw]))[0])
        alert = self._judge(event, row, raw, rank, share, self._window(event, row))
        self.moved.update(signed_log(row[: len(self._numeric)]))
        if self.drift.update(rank):
            self.drift_alerts += 1
            self._pending.append(drift_alert(self.name, self.kind, event, self.drift, self.moved.drifting(),
                                             "the traffic"))
        return alert

    def _window(self, event: Event, row: np.ndarray) -> np.ndarray | None:
        """The summary of this flow's source window (`windows.py`), None while it is not full."""
        if self.windows is None:
            return None
        f = event.fields
        return self.sources.add(str(f.get("source.ip") or "?"), str(f.get("destination.ip") or "?"),
                                str(f.get("destination.port") or ""), row[self._window_inputs])

    def drain(self) -> list[Alert]:
        """Alerts about the model itself (drift) since the last call; `ModelDetector` passes them on."""
        out, self._pending = self._pending, []
        return out

    def _judge(self, event: Event, row: np.ndarray, raw: float, rank: float, share: float,
               window: np.ndarray | None) -> Alert | None:
        if self.hybrid is not None:
            t_forest, t_novel = self.hybrid.thresholds(share)
            label, p_attack, proba = self.hybrid.classifier.classify_row(row)
            if p_attack >= t_forest:
                if label == self.hybrid.benign:  # under 0.5 but past the budget's threshold: the likeliest attack
                    attack = [(c, p) for c, p in zip(self.hybrid.classifier.classes, proba.tolist(), strict=True)
                              if c != self.hybrid.benign]
                    label = max(attack, key=lambda cp: cp[1])[0]
                return self._allowed(event, label, lambda src: self._alert(event, label, p_attack, proba, row, src))
            if window is not None and self.windows is not None:
                w_raw = float(self.windows.raw(window)[0])
                if w_raw >= self.hybrid.window_threshold(share):
                    return self._allowed(event, "novel-source",
                                         lambda src: self._window_alert(event, window, w_raw, share, src))
        else:
            t_novel = self.novelty.threshold(share)
        if raw < t_novel:
            return None
        return self._allowed(event, NOVEL, lambda src: self._novel_alert(event, raw, rank, share, row, src))

    def _allowed(self, event: Event, label: str, build: Any) -> Alert | None:
        src = str(event.fields.get("source.ip") or "?")
        if not self.budget.allow(src, label, event.timestamp):
            self.stats.suppressed += 1
            return None
        self.stats.alerts += 1
        alert: Alert = build(src)
        return alert

    def _novel_alert(self, event: Event, raw: float, rank: float, share: float, row: np.ndarray, src: str) -> Alert:
        f = event.fields
        dst = str(f.get("destination.ip") or "?")
        port = f.get("destination.port")
        where = f"{src} to {dst}" + (f":{port}" if port is not None else "")
        unusual = self.novelty.unusual(row)
        beyond = raw > self.novelty.calibration.scores[-1]
        assets = tuple(a for a in (f.get("source.asset.id"), f.get("destination.asset.id")) if a)
        rarer = "every" if beyond else f"{rank:.1%} of the"
        return Alert(
            detector=self.name, rule_id=f"{self.kind}/{NOVEL}", title=f"unusual flow from {where}",
            level="high" if beyond else "medium", timestamp=event.timestamp,
            events=(EventRef(event.source, event.record, event.key, event.timestamp),),
            assets=assets, tags=("healthswarm.learn", self.kind, "novelty"),
            description=(f"model {self.name}: this flow is less like benign traffic than {rarer} benign flows it "
                         f"was calibrated on (threshold: {share:.2%} of benign flows, from a budget of "
                         f"{self.assets.per_day:g} false alarms per asset and day); unusual: "
                         + (describe_unusual(unusual) or "no single feature; their combination")),
            details={"score": round(rank, 4), "novelty": round(raw, 4), "class": NOVEL, "share": round(share, 6),
                     "unusual": unusual, "model": self.name, "source": src, "destination": dst},
        )

    def _window_alert(self, event: Event, window: np.ndarray, raw: float, share: float, src: str) -> Alert:
        assert self.windows is not None
        f = event.fields
        port = f.get("destination.port")
        unusual = self.windows.unusual(window)
        found = techniques(unusual, window, None if port is None else str(port))
        tactics = dict.fromkeys(_T[t][1] for t in found)
        beyond = raw > self.windows.calibration.scores[-1]
        assets = tuple(a for a in (f.get("source.asset.id"), f.get("destination.asset.id")) if a)
        behaviour = ("scanning" if "T1046" in found else "flooding one service" if found else "unusual")
        return Alert(
            detector=self.name, rule_id=f"{self.kind}/novel-source", level="high" if beyond or found else "medium",
            title=f"{src}: last {self.sources.size} flows {behaviour}", timestamp=event.timestamp,
            events=(EventRef(event.source, event.record, event.key, event.timestamp),),
            techniques=tuple(AttackRef(t, _T[t][0]) for t in found),
            tactics=tuple(AttackRef(t, _TACTICS[t], next(v[2] for v in _T.values() if v[1] == t)) for t in tactics),
            assets=assets, tags=("healthswarm.learn", self.kind, "novelty", "windows"),
            description=(f"model {self.name}: the last {self.sources.size} flows of {src} are less like benign "
                         f"sources' than {'every' if beyond else 'all but ' + format(share / 2, '.2%') + ' of the'} "
                         f"benign windows it was calibrated on; unusual: "
                         + (describe_unusual(unusual) or "no single feature; their combination")),
            details={"novelty": round(raw, 4), "class": NOVEL, "share": round(share, 6), "unusual": unusual,
                     "window": dict(zip(FEATURES, (round(float(v), 4) for v in window), strict=True)),
                     "model": self.name, "source": src, "destination": str(f.get("destination.ip") or "?")},
        )
