"""The flow classifier as a pipeline detector: one ingested flow event in, an alert naming the attack class out.

The feature row is built from `event.original` (the CSV row as written; the cicflowmeter and nsl-kdd
formats keep every column there), matching the model's feature names to the row's columns by their
canonical spelling, so the original CIC-IDS2017 headers (leading spaces) read like the corrected ones.
NaN/Infinity are handled as the training layout did: in the CICFlowMeter rate columns (a zero-duration
flow) they become -1; anywhere else the event is skipped and counted, never scored on a made-up value.
A `Protocol` (or NSL-KDD `service`/`flag`) value unseen in training is scored as "other" and counted.
Events without the model's columns (a Suricata or Zeek flow, a syslog line, a CICFlowMeter file of
another release that lacks some columns) are skipped and counted with the reason.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from healthswarm.detect.learn.datasets.cicflowmeter import RATE_COLUMNS
from healthswarm.detect.learn.flow_classifier import FlowClassifier
from healthswarm.detect.learn.pipeline import DEFAULT_BUDGET, AlertBudget, ModelStats, lower
from healthswarm.model import Alert, AttackRef, Event, EventRef

TOP_FEATURES = 3
_SHAPES = 256  # distinct column sets remembered (a file has one; JSON sources have a few per event type)

_T = {
    "T1498": ("Network Denial of Service", "TA0040", "impact"),
    "T1499": ("Endpoint Denial of Service", "TA0040", "impact"),
    "T1046": ("Network Service Discovery", "TA0007", "discovery"),
    "T1110": ("Brute Force", "TA0006", "credential-access"),
    "T1190": ("Exploit Public-Facing Application", "TA0001", "initial-access"),
    "T1071": ("Application Layer Protocol", "TA0011", "command-and-control"),
    # ATT&CK for ICS, for floods and scans of industrial protocol ports (windows.techniques)
    "T0814": ("Denial of Service", "TA0107", "inhibit-response-function"),
    "T0846": ("Remote System Discovery", "TA0102", "discovery-ics"),
}
_TACTICS = {"TA0040": "Impact", "TA0007": "Discovery", "TA0006": "Credential Access", "TA0001": "Initial Access",
            "TA0011": "Command and Control", "TA0107": "Inhibit Response Function", "TA0102": "Discovery"}


def canonical(name: str) -> str:
    return " ".join(name.split()).lower()


def techniques_of(label: str) -> tuple[str, ...]:
    """ATT&CK techniques of a CIC-IDS2017 class (or an NSL-KDD category), where one fits."""
    c = canonical(label).replace("-", " ").replace("_", " ")
    out: list[str] = []
    if "ddos" in c:
        out.append("T1498")  # volumetric flood of the network
    elif "dos" in c.split():
        out.append("T1499")  # Hulk, GoldenEye, Slowloris, Slowhttptest exhaust the web server, not the link
    if "portscan" in c or "port scan" in c or c == "probe":
        out.append("T1046")
    if "patator" in c or "brute force" in c:
        out.append("T1110")
    if "web attack" in c or "heartbleed" in c:
        out.append("T1190")
    if c.startswith("bot") or c == "infiltration":
        out.append("T1071")  # the bot's and the infiltrated host's command-and-control sessions
    return tuple(out)


def level_of(label: str, score: float) -> str:
    c = canonical(label)
    if "heartbleed" in c or c == "infiltration":
        level = "critical"  # memory disclosure of a TLS server; a host already inside
    elif set(techniques_of(label)) - {"T1046"}:
        level = "high"
    else:
        level = "medium"  # scans, and classes with no technique
    return level if score >= 0.8 else lower(level)


class FlowDetector:
    """Observes flow events with a trained flow classifier (see the module docstring)."""

    kind = "flow-classifier"

    def __init__(self, model: FlowClassifier, budget_per_day: int = DEFAULT_BUDGET) -> None:
        if model.spec is None:
            raise ValueError("the flow classifier has not been trained")
        self.model = model
        self.name = model.card.name or model.kind
        self.layout = model.layout
        self.stats = ModelStats()
        self.budget = AlertBudget(budget_per_day)
        self._numeric = list(model.spec.numeric)
        self._codes = [(name, {v: i for i, v in enumerate(vocab)}) for name, vocab in model.spec.categorical.items()]
        self._features = [*self._numeric, *(name for name, _ in self._codes)]
        self._repair = RATE_COLUMNS if self.layout == "cicflowmeter" else frozenset()
        self._shapes: dict[tuple[str, ...], list[str] | str] = {}
        order = np.argsort(-model.importances(), kind="stable")[:TOP_FEATURES]
        self._top = [int(i) for i in order]

    def _columns(self, original: dict[str, Any]) -> list[str] | str:
        """The row's column for each model feature, in feature order, or why the row does not have them."""
        keys = tuple(original)
        found = self._shapes.get(keys)
        if found is None:
            by_name = {canonical(k): k for k in keys}
            columns = [by_name.get(canonical(f)) for f in self._features]
            missing = [f for f, c in zip(self._features, columns, strict=True) if c is None]
            total = len(self._features)
            if len(missing) == total:
                found = f"not a {self.layout} flow (none of the model's {total} features)"
            elif missing:
                found = (f"{len(missing)} of the model's {total} features missing ("
                         + ", ".join(missing[:3]) + (", …)" if len(missing) > 3 else ")"))
            else:
                found = [c for c in columns if c is not None]
            if len(self._shapes) >= _SHAPES:
                self._shapes.clear()
            self._shapes[keys] = found
        return found

    def features_of(self, event: Event) -> np.ndarray | str:
        """The encoded feature row of `event`, or the reason it has none (for the skip count)."""
        observer = event.fields.get("observer.type") or "unknown"
        original = event.original
        if not isinstance(original, dict):
            return f"{observer}: not a {self.layout} flow (no columns)"
        columns = self._columns(original)
        if isinstance(columns, str):
            return f"{observer}: {columns}"
        row = np.empty(len(columns))
        for j, name in enumerate(self._numeric):
            try:
                value = float(original[columns[j]])
            except (TypeError, ValueError):
                return f"{observer}: {name} is not a number"
            if not math.isfinite(value):
                if name not in self._repair:
                    return f"{observer}: {name} is NaN or infinite"
                value = -1.0  # rate of a zero-duration flow: "undefined", as in training
            row[j] = value
        base = len(self._numeric)
        for k, (_, codes) in enumerate(self._codes):
            code = codes.get(str(original[columns[base + k]]).strip())
            if code is None:
                self.stats.unseen_categories += 1
                code = -1  # "other", below every known code, as `--unseen-categories other` scores it
            row[base + k] = code
        return row

    def observe(self, event: Event) -> Alert | None:
        row = self.features_of(event)
        if isinstance(row, str):
            self.stats.skipped[row] += 1
            return None
        self.stats.scored += 1
        label, score, proba = self.model.classify_row(row)
        if label == self.model.benign:
            return None
        src = str(event.fields.get("source.ip") or "?")
        if not self.budget.allow(src, label, event.timestamp):
            self.stats.suppressed += 1
            return None
        self.stats.alerts += 1
        return self._alert(event, label, score, proba, row, src)

    def _alert(self, event: Event, label: str, score: float, proba: np.ndarray, row: np.ndarray, src: str) -> Alert:
        f = event.fields
        dst = str(f.get("destination.ip") or "?")
        port = f.get("destination.port")
        where = f"{src} to {dst}" + (f":{port}" if port is not None else "")
        ranked = sorted(zip(self.model.classes, proba.tolist(), strict=True), key=lambda p: -p[1])[:3]
        techniques = techniques_of(label)
        tactics = dict.fromkeys(_T[t][1] for t in techniques)
        top = ", ".join(f"{self._features[i]}={row[i]:g}" for i in self._top)
        assets = tuple(a for a in (f.get("source.asset.id"), f.get("destination.asset.id")) if a)
        return Alert(
            detector=self.name, rule_id=f"{self.kind}/{label}", title=f"{label} flow from {where}",
            level=level_of(label, score), timestamp=event.timestamp,
            events=(EventRef(event.source, event.record, event.key, event.timestamp),),
            techniques=tuple(AttackRef(t, _T[t][0]) for t in techniques),
            tactics=tuple(AttackRef(t, _TACTICS[t], next(v[2] for v in _T.values() if v[1] == t)) for t in tactics),
            assets=assets, tags=("healthswarm.learn", self.kind),
            description=(f"model {self.name} classes this {f.get('network.transport', '')} flow as {label} "
                         f"(attack probability {score:.2f}; "
                         + ", ".join(f"{c} {p:.2f}" for c, p in ranked)
                         + f"); the forest's most important features, for this flow: {top}"),
            details={"score": round(score, 4), "class": label, "probabilities": {c: round(p, 4) for c, p in ranked},
                     "model": self.name, "source": src, "destination": dst},
        )
