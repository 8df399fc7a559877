"""What the runner asks of a role: take a batch of deliveries and commit its effects, or raise."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from healthswarm.worker.delivery import Delivery


class Stage(Protocol):
    def active(self) -> bool:
        """May this worker take messages now? (False: a standby correlator.) Called from a thread."""
        ...

    def handle(self, batch: Sequence[Delivery]) -> None:
        """Commit the batch's effects idempotently; raising leaves nothing committed and the batch is nak'ed."""
        ...

    def flush(self) -> None:
        """Commit what only the passing of time completes (on a timer, and once at a graceful stop); raise to
        have it retried at the next call. Called from a thread, never while `handle` runs."""
        ...

    def close(self) -> None: ...
