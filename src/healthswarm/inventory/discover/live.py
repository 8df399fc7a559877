"""Discovery as events arrive (the agent): one picture, fed batch by batch, kept where `inventory discover` and
the dashboard's Discovered view read it.

`LiveDiscovery(store, workspace, inventory, through=cursor)` starts from the workspace's picture
(`discover/state.json`) and brings it exactly to the stored event `through` (the caller's cursor: the id of the
last stored event it has handed on): it reads the gap from the store, or rebuilds when the picture holds events
past the cursor (a `healthswarm inventory discover` ran ahead), so no event is counted twice or missed. Then
`observe(events, through)` feeds each batch — the stored events after the previous `through`, up to and
including the id `through` — through `alerts.DiscoveryDetector` (so an undeclared flow into a safety-critical
device raises its alert), and writes the picture every `interval` seconds; `save()` writes it now (on
shutdown). A caller that runs `detector` among its own detectors (the agent's detection step) calls
`advance(through)` after each step instead. The picture it writes says which stored event it runs through, so
the batch command and the view read on from there.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from pathlib import Path

from healthswarm.inventory.discover.alerts import DiscoveryDetector
from healthswarm.inventory.discover.observe import Discovery
from healthswarm.inventory.discover.service import STATE, load_state, observe_new, save_state
from healthswarm.model import Alert, Event, Inventory
from healthswarm.store import Store

DEFAULT_INTERVAL = 60.0


class LiveDiscovery:
    """The observed picture, fed batch by batch as the caller's cursor moves, persisted every `interval` s."""

    def __init__(self, store: Store, workspace: Path, inventory: Inventory, through: int = 0,
                 interval: float = DEFAULT_INTERVAL, clock: Callable[[], float] = time.monotonic) -> None:
        self.store = store
        self.state = workspace / STATE
        self.interval = interval
        self.clock = clock
        discovery, after = load_state(self.state, store)
        if after > through:  # the picture holds events the caller has yet to hand on: start again
            discovery, after = Discovery(), 0
        self.caught_up, self.through = observe_new(store, discovery, after, through)
        self.through = max(self.through, through)
        self.detector = DiscoveryDetector(inventory, discovery)
        self.saved_at = clock()
        self.save()

    @property
    def discovery(self) -> Discovery:
        return self.detector.discovery

    def observe(self, events: Sequence[Event], through: int) -> list[Alert]:
        """Feed the stored events after the last batch, `through` being the id of the last of them; the alerts of
        undeclared flows into safety-critical devices they open. Writes the picture when `interval` has passed."""
        self._check(through)
        detect = self.detector.detect
        alerts = [alert for event in events for alert in detect(event)]
        self.advance(through)
        return alerts

    def advance(self, through: int) -> None:
        """The detector (run by the caller among its detectors) has seen the stored events up to the id `through`;
        writes the picture when `interval` has passed."""
        self._check(through)
        self.through = through
        if self.clock() - self.saved_at >= self.interval:
            self.save()

    def _check(self, through: int) -> None:
        if through < self.through:
            raise ValueError(f"batch through event {through} is behind the picture (event {self.through})")

    def save(self) -> None:
        """Write the picture now (atomically), as running through the stored event `through`."""
        save_state(self.state, self.store, self.discovery, self.through)
        self.saved_at = self.clock()
