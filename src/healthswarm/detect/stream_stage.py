"""The detect stage of both deployments: events as they arrive → every detector of the suite → alerts.

The embedded agent (agent/detect.py) hands it the events of each detection step; the scale-out detect role
(`agent run --role detect`) the events of each bus batch. It knows neither bus nor store: what it returns is
committed by its caller, with the caller's cursor or outbox.

Order: the events of one call are judged in event time (Sigma correlations, baselines and the clinical
analytics keep windows that expect it), as the batch stage over stored events reads them.

Time: what only the passing of time completes (Sigma correlations with `lt`/`lte`/`neq` conditions, judged when
a window closes) comes out of `flush()`, which closes the windows whose timespan has passed in stream time —
the latest event time seen, advanced by the wall-clock time since it was seen (so an idle stream still moves
on, and a replay of old logs is judged by its own clock, not cut short by ours). Windows still open when the
process stops are lost with it, as in a crash: an `lt` rule may then miss, never fire early.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime

from healthswarm.detect.base import Detector
from healthswarm.detect.sigma import SigmaDetector
from healthswarm.model import Alert, Event


class DetectStage:
    def __init__(self, detectors: Sequence[Detector]) -> None:
        self.detectors = list(detectors)
        self._latest: float | None = None  # the latest event time seen (epoch seconds) …
        self._seen_at = 0.0  # … and when (monotonic): stream time advances with idle wall time

    def detect(self, events: Iterable[Event]) -> list[Alert]:
        """Every detector over the events, in event time; the alerts they raise."""
        ordered = sorted(events, key=lambda e: (e.timestamp, e.key))
        found: list[Alert] = []
        if not ordered:
            return found
        latest = ordered[-1].timestamp.timestamp()
        self._latest = latest if self._latest is None else max(self._latest, latest)
        self._seen_at = time.monotonic()
        for event in ordered:
            for detector in self.detectors:
                out = detector.detect(event)
                if out:
                    found.extend(out)
        return found

    def stream_time(self) -> datetime | None:
        if self._latest is None:
            return None
        return datetime.fromtimestamp(self._latest + (time.monotonic() - self._seen_at), UTC)

    def flush(self) -> list[Alert]:
        """The alerts that the passing of stream time completes. Their windows are gone once judged: a caller
        whose commit fails keeps these alerts for its next commit rather than losing them."""
        now = self.stream_time()
        if now is None:
            return []
        return [a for d in self.detectors if isinstance(d, SigmaDetector) for a in d.expire(now)]
