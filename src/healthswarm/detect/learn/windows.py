"""What one flow cannot show: the last flows of its source, summarised, scored against benign sources.

A DoS Hulk request or one probe of a port scan looks like an ordinary short web or TCP flow; the flood
or the scan is in the many flows around it. For every flow this keeps the source's last `WINDOW` flows
(its own included) and summarises them (`FEATURES`):

- `port_fanout`, `host_fanout`: distinct destination ports / hosts per flow — a scan probes many;
- `top_service_share`: share of the window going to its most common destination host and port — a
  flood hammers one service;
- `unanswered_share`, `short_share`: flows with no packet back, flows of at most 3 packets — half-open
  and torn-down connections;
- `median_log_packets`, `median_log_duration`, `median_log_fwd_bytes`, `median_log_bwd_bytes`, and
  `iqr_log_fwd_bytes` (interquartile range) — a tool sends the same request over and over.

Windows are the last N flows, not the last N seconds, on purpose: the shared CIC-IDS2017 files are a
random sample of at most 2,500 rows per class, so every class is thinned by a different factor (benign
traffic ~1,000-fold, DoS Hulk ~100-fold) and any flows-per-second figure measured on them would
separate the classes by the sampling alone. None of the features above is a rate or a count of flows.

`WindowModel` learns these summaries of benign flows only (nearest benign windows) and calibrates a
threshold from a false-alarm budget on benign windows it did not learn from, as the per-flow novelty
model does. `techniques` names the ATT&CK techniques the unusual behaviour implies.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from sklearn.neighbors import NearestNeighbors

from healthswarm.detect.learn.novelty import Calibration
from healthswarm.errors import InputError, Location, Problem

WINDOW = 20
FEATURES = ("port_fanout", "host_fanout", "top_service_share", "unanswered_share", "short_share",
            "median_log_packets", "median_log_duration", "median_log_fwd_bytes", "median_log_bwd_bytes",
            "iqr_log_fwd_bytes")
#: the CICFlowMeter columns a window needs from each flow, in the order `SourceWindows.add` takes them
INPUTS = ("Total Fwd Packet", "Total Bwd packets", "Flow Duration", "Total Length of Fwd Packet",
          "Total Length of Bwd Packet")
#: ports of industrial and building-control protocols: a flood or scan of them is also an ICS technique
ICS_PORTS = frozenset({102, 502, 2404, 20000, 44818, 47808})
#: the least spread a feature is measured in: one flow of the window for shares, ×1.6 for the logs
FLOOR = np.asarray([1 / WINDOW] * 5 + [0.5] * 5)


@dataclass(slots=True)
class _Flow:
    host: str
    port: str
    packets: float
    back: float
    log_packets: float
    log_duration: float
    log_fwd: float
    log_bwd: float


@dataclass(slots=True)
class SourceWindows:
    """The last `size` flows of every source, and the window summary each new flow gets. At most
    `max_sources` sources are kept (a long-running agent sees sources come and go): the one heard from
    least recently is forgotten first."""

    size: int = WINDOW
    max_sources: int = 100_000
    sources: dict[str, deque[_Flow]] = field(default_factory=dict)

    def add(self, source: str, host: str, port: str, values: Sequence[float]) -> np.ndarray | None:
        """Add a flow (`values` in `INPUTS` order) and return its source's window summary (`FEATURES`),
        or None while the source has sent fewer than `size` flows: a part-filled window's shares depend
        on how many flows it holds (one flow is all "fan-out"), not on what the source does."""
        fwd, bwd, duration, fwd_bytes, bwd_bytes = (max(float(v), 0.0) for v in values)
        window = self.sources.pop(source, None)  # re-inserted last: the dict's order is recency
        if window is None:
            window = deque(maxlen=self.size)
            if len(self.sources) >= self.max_sources:
                del self.sources[next(iter(self.sources))]
        self.sources[source] = window
        window.append(_Flow(host, port, fwd + bwd, bwd, np.log1p(fwd + bwd), np.log1p(duration),
                            np.log1p(fwd_bytes), np.log1p(bwd_bytes)))
        n = len(window)
        if n < self.size:
            return None
        services: dict[tuple[str, str], int] = {}
        for f in window:
            services[(f.host, f.port)] = services.get((f.host, f.port), 0) + 1
        logs = np.asarray([(f.log_packets, f.log_duration, f.log_fwd, f.log_bwd) for f in window])
        # medians and the interquartile range: one odd flow in the window must not make the whole window odd
        q1, median, q3 = np.percentile(logs, [25, 50, 75], axis=0)
        return np.asarray([
            len({f.port for f in window}) / n, len({f.host for f in window}) / n, max(services.values()) / n,
            sum(f.back == 0 for f in window) / n, sum(f.packets <= 3 for f in window) / n,
            *median, q3[2] - q1[2]])


def summarise(sources: np.ndarray, peers: np.ndarray, times: np.ndarray, inputs: np.ndarray) -> np.ndarray:
    """Window summaries of flows given as arrays (source, "host:port", time, `INPUTS` values), taken in
    time order; row i of the result belongs to flow i (NaN while its source's window is not full)."""
    out = np.full((len(sources), len(FEATURES)), np.nan)
    windows = SourceWindows()
    for i in np.argsort(times, kind="stable"):
        host, _, port = str(peers[i]).rpartition(":")
        summary = windows.add(str(sources[i]), host, port, inputs[i])
        if summary is not None:
            out[i] = summary
    return out


def techniques(unusual: list[dict[str, Any]], summary: np.ndarray, port: str | None) -> tuple[str, ...]:
    """ATT&CK techniques the window's behaviour implies: many ports or hosts probed is a scan (T1046);
    one service hammered, mostly unanswered or torn down, a flood — network (T1498) when most flows get
    nothing back, else the service itself (T1499); against an industrial protocol port also ATT&CK for
    ICS (T0846 Remote System Discovery, T0814 Denial of Service)."""
    s = dict(zip(FEATURES, summary.tolist(), strict=True))
    names = {u["feature"] for u in unusual}
    out: list[str] = []
    ics = port is not None and port.isdigit() and int(port) in ICS_PORTS
    if names & {"port_fanout", "host_fanout"} and max(s["port_fanout"], s["host_fanout"]) >= 0.5:
        out += ["T1046", *(["T0846"] if ics else [])]
    elif s["top_service_share"] >= 0.8:
        out += ["T1498" if s["unanswered_share"] >= 0.5 else "T1499", *(["T0814"] if ics else [])]
    return tuple(out)


class WindowModel:
    """Benign window summaries → distances and a calibration (see the module docstring).

    The score of a window is its mean distance to the `K` nearest benign windows (standardised features):
    a flood or scan is unusual in the combination (one service, long flows, identical requests) more than
    in any one feature, and nearest neighbours see combinations. Measured against an isolation forest on
    the same windows (CIC-IDS2017, leave-one-class-out), which flagged none of DoS at a 1 % budget.

    Consecutive windows of a source share all but one flow, so a calibration row drawn at random has
    near-copies among the fitted rows and scores too low. The calibration is out-of-fold by time instead:
    the benign windows are cut into `FOLDS` time ranges, each scored by neighbours from the others.
    """

    K = 5
    FOLDS = 4

    def fit(self, benign: np.ndarray, times: np.ndarray) -> WindowModel:
        if len(benign) < 10 * self.FOLDS:
            raise InputError(Problem(Location("<training data>"), f"{len(benign)} full benign source windows",
                                     f"at least {10 * self.FOLDS}: benign sources with {WINDOW} flows or more"))
        self.mean = benign.mean(axis=0)
        self.scale = np.maximum(benign.std(axis=0), 1e-3)
        fold = np.searchsorted(np.quantile(times, np.linspace(0, 1, self.FOLDS + 1)[1:-1]), times, side="right")
        out_of_fold = np.empty(len(benign))
        for k in range(self.FOLDS):
            held = fold == k
            if held.any() and (~held).any():
                out_of_fold[held] = self._score(self._neighbours(benign[~held]), benign[held])
        self.calibration = Calibration.of(out_of_fold)
        self.nn = self._neighbours(benign)
        q1, self.centre, q3 = np.percentile(benign, [25, 50, 75], axis=0)
        self.spread = np.maximum.reduce([q3 - q1, benign.std(axis=0), FLOOR])
        self.low, self.high = np.percentile(benign, [1, 99], axis=0)
        return self

    def _neighbours(self, rows: np.ndarray) -> NearestNeighbors:
        return NearestNeighbors(n_neighbors=min(self.K, len(rows))).fit((rows - self.mean) / self.scale)

    def _score(self, nn: NearestNeighbors, rows: np.ndarray) -> np.ndarray:
        return nn.kneighbors((np.atleast_2d(rows) - self.mean) / self.scale)[0].mean(axis=1)

    def raw(self, rows: np.ndarray) -> np.ndarray:
        """Scores of window summaries; NaN rows (windows not yet full) score -inf, below every threshold."""
        rows = np.atleast_2d(rows)
        out = np.full(len(rows), -np.inf)
        full = ~np.isnan(rows).any(axis=1)
        if full.any():
            out[full] = self._score(self.nn, rows[full])
        return out

    def threshold(self, share: float) -> float:
        return self.calibration.threshold(share)

    def unusual(self, summary: np.ndarray, top: int = 3) -> list[dict[str, Any]]:
        """The `top` window features furthest from the benign windows' median, in spreads (as
        `novelty.Profile` says it of a flow's features; these are shares and logs already)."""
        z = np.abs(summary - self.centre) / self.spread
        return [{"feature": FEATURES[i], "value": round(float(summary[i]), 4),
                 "benign_p1": round(float(self.low[i]), 4), "benign_p99": round(float(self.high[i]), 4),
                 "spreads_from_median": round(float(z[i]), 1)}
                for i in np.argsort(-z, kind="stable")[:top] if z[i] > 0]
