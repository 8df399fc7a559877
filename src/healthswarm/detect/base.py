"""The one protocol every detector follows: events in, alerts out."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from healthswarm.model import Alert, Event


@runtime_checkable
class Detector(Protocol):
    """`detect` is called once per event in stream order; `flush` at the end of a stream (or on a timer)
    returns what only the passing of time can complete (e.g. correlations with `lt` conditions)."""

    name: str

    def detect(self, event: Event) -> list[Alert]: ...

    def flush(self) -> list[Alert]: ...
