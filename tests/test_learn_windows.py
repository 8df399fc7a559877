"""What one flow cannot show: source windows (scan and flood behaviour with their ATT&CK ids), and drift
alerts when a telemetry model no longer fits its device."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np

from healthswarm.detect.learn.drift import FeatureDrift
from healthswarm.detect.learn.telemetry import TelemetryModel
from healthswarm.detect.learn.telemetry_detector import TelemetryDetector
from healthswarm.detect.learn.windows import FEATURES, WINDOW, SourceWindows, WindowModel, summarise, techniques
from healthswarm.model import Event
from test_learn_telemetry import synthetic

WEB = [3.0, 3.0, 5e6, 400.0, 6000.0]  # INPUTS: fwd packets, bwd packets, duration µs, fwd bytes, bwd bytes
PROBE = [1.0, 0.0, 40.0, 0.0, 0.0]  # one SYN, nothing back


def feature(summary: np.ndarray, name: str) -> float:
    return float(summary[FEATURES.index(name)])


def test_a_window_summarises_the_sources_last_flows_only_once_full() -> None:
    windows = SourceWindows()
    scan = [windows.add("10.0.0.9", "10.0.0.50", str(port), PROBE) for port in range(1, WINDOW + 6)]
    assert all(s is None for s in scan[: WINDOW - 1])  # a part-filled window says nothing yet
    last = scan[-1]
    assert last is not None and feature(last, "port_fanout") == 1.0 and feature(last, "host_fanout") == 1 / WINDOW
    assert feature(last, "unanswered_share") == 1.0 and feature(last, "short_share") == 1.0
    flood = [windows.add("10.0.0.7", "10.0.0.50", "80", WEB) for _ in range(WINDOW)][-1]
    assert flood is not None and feature(flood, "top_service_share") == 1.0
    assert feature(flood, "iqr_log_fwd_bytes") == 0.0  # the same request over and over
    assert len(windows.sources["10.0.0.9"]) == WINDOW  # only the last WINDOW flows are kept
    few = SourceWindows(max_sources=2)
    for source in ("a", "b", "a", "c"):  # "b" was heard from least recently when "c" arrived
        few.add(source, "h", "80", WEB)
    assert list(few.sources) == ["a", "c"]


def test_techniques_follow_the_behaviour_and_the_port() -> None:
    windows = SourceWindows()
    scan = [windows.add("s", "h", str(p), PROBE) for p in range(WINDOW)][-1]
    flood = [windows.add("f", "h", "80", PROBE) for _ in range(WINDOW)][-1]
    slow = [windows.add("w", "h", "80", WEB) for _ in range(WINDOW)][-1]
    modbus = [windows.add("m", "plc", "502", PROBE) for _ in range(WINDOW)][-1]
    assert scan is not None and flood is not None and slow is not None and modbus is not None
    fan = [{"feature": "port_fanout"}]
    assert techniques(fan, scan, "22") == ("T1046",)
    assert techniques(fan, scan, "502") == ("T1046", "T0846")  # a scan of an industrial protocol port
    assert techniques([{"feature": "top_service_share"}], flood, "80") == ("T1498",)  # unanswered: the network
    assert techniques([{"feature": "median_log_duration"}], slow, "80") == ("T1499",)  # answered: the service
    assert techniques([], modbus, "502") == ("T1498", "T0814")


def benign_sources(seed: int, n: int = 4000) -> tuple[np.ndarray, np.ndarray]:
    """Window summaries of 20 hosts speaking HTTPS, DNS, Kerberos and SMB to 7 servers, and their times."""
    rng = np.random.default_rng(seed)
    sources = rng.choice([f"10.0.1.{i}" for i in range(20)], n)
    peers = np.asarray([f"10.0.2.{rng.integers(1, 8)}:{rng.choice([443, 53, 88, 445])}" for _ in range(n)])
    inputs = np.column_stack([rng.integers(2, 20, n), rng.integers(2, 20, n), rng.lognormal(12, 2, n),
                              rng.lognormal(6, 1, n), rng.lognormal(8, 1, n)]).astype(float)
    times = np.arange(n, dtype=float)
    summaries = summarise(sources, peers, times, inputs)
    full = ~np.isnan(summaries).any(axis=1)
    return summaries[full], times[full]


def test_window_model_flags_a_scan_within_the_budget_of_benign_sources() -> None:
    model = WindowModel().fit(*benign_sources(0))
    unseen, _ = benign_sources(1)  # other benign traffic of the same network keeps to the 1 % budget
    assert (model.raw(unseen) >= model.threshold(0.01)).mean() <= 0.01
    scan = summarise(np.full(200, "10.0.9.9"), np.asarray([f"10.0.2.1:{p}" for p in range(200)]),
                     np.arange(200.0), np.tile(PROBE, (200, 1)))
    flagged = model.raw(scan) >= model.threshold(0.01)
    assert flagged[WINDOW - 1:].all() and not flagged[: WINDOW - 1].any()  # from the first full window on
    unusual = {u["feature"] for u in model.unusual(scan[-1])}
    assert unusual & {"port_fanout", "unanswered_share", "short_share"}


def test_feature_drift_names_what_moved() -> None:
    moved = FeatureDrift(["a", "b"], np.array([0.0, 10.0]), np.array([1.0, 2.0]), span=5)
    for _ in range(50):
        moved.update(np.array([0.1, 20.0]))
    assert [f["feature"] for f in moved.drifting()] == ["b"]  # a stayed within a spread of its centre


def test_telemetry_detector_raises_a_drift_alert_when_the_device_changes() -> None:
    table, labels = synthetic(1)
    model = TelemetryModel(max_iter=60)
    model.learn_many(table, labels)
    detector = TelemetryDetector(model, budget_per_day=10**6)
    test, truth = synthetic(2)
    start = datetime(2026, 3, 1, tzinfo=UTC)
    drift = []
    for i in range(len(test)):
        if truth[i] == "attack":
            continue
        shifted = i >= 600  # the thermostat moved to a warmer room: every reading 12 degrees up
        temp = float(test.columns["current_temperature"][i]) + (12.0 if shifted else 0.0)
        event = Event(start + timedelta(seconds=float(test.columns["time"][i])),
                      {"device.type": "thermostat", "device.id": "t-1", "iomt.metrics.current_temperature": temp,
                       "iomt.metrics.thermostat_status": float(test.columns["thermostat_status"][i])},
                      {}, source="t", record=i, key=str(i))
        detector.observe(event)
        drift += [(i, a) for a in detector.drain()]
    assert drift, "no drift alert after the readings moved"
    first, alert = drift[0]
    assert first >= 600 and alert.detector == "drift" and alert.rule_id == "telemetry/drift"
    assert [f["feature"] for f in alert.details["features"]] == ["current_temperature"]
    assert "thermostat t-1" in alert.title and detector.drift_alerts == len(drift)
