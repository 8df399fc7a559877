"""The agent's swarm node: `swarm.runtime.NodeRuntime` on its own asyncio loop thread, plus the two things
the agent adds to it.

- **Publishing by policy.** Every `interval` seconds, incidents at or above `min_severity` that have been
  known here for `hold` seconds (an analyst's window: `healthswarm agent share INCIDENT --veto|--now` vetoes
  one or cuts its hold short; closed and false-positive incidents are never due) make the agent call
  `healthswarm.swarm.service.publish_from_store(store, node, workspace, organisation)`: the egress gate
  (select → sanitise → leak check → sign) decides what leaves, and nothing else here signs or sends.
  Incidents that triggered a publication are remembered in `<workspace>/agent/published.json` with what they
  held then; one that grows is published again (only its new items are signed: the gate's audit knows the rest).
- **Receiving.** Indicators and sightings that other organisations' nodes signed (verified by the node on
  arrival) become watchlist entries (`Watch`, origin `swarm:<organisation>`); the agent's watchlist refresh
  picks them up and retro-hunts them. A warning our own data shows benign never arrives (the node refutes it:
  swarm/refute.py). One that others refute waits: it becomes a watch only after the node has held it for
  `SETTLE_ROUNDS` rounds (time for the refutation of a node that got it in the same round as we did to come
  back: it gossips it in its next round) and never while the swarm disputes it. Two rounds, not more: every
  round of waiting delays a true warning too (2 s at the default period). The moment one becomes a watch, the
  node calls `on_accepted` (the agent refreshes its watchlist and retro-hunts then, not at its next poll).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from healthswarm.agent.config import SwarmConfig
from healthswarm.detect.correlate import CLOSED_STATES
from healthswarm.detect.watchlist import TYPE_KINDS, Watch
from healthswarm.store import Store
from healthswarm.store.alerts import incident_summaries
from healthswarm.swarm.items import indicator_key
from healthswarm.swarm.service import publish_from_store

log = logging.getLogger("healthswarm.agent.swarm")
DECISIONS = "share-decisions.json"
SETTLE_ROUNDS = 2   # rounds a peer's warning is held before it is watched (see the module's docstring)
PUBLISHED = "published.json"


def agent_folder(workspace: Path) -> Path:
    folder = workspace / "agent"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def read_json(path: Path, default: Any) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return default


def write_json(path: Path, data: Any) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=True, default=str) + "\n", encoding="utf-8")
    os.replace(tmp, path)


def set_decision(workspace: Path, incident_id: str, decision: str) -> None:
    """`veto` (never publish this incident's indicators), `now` (publish without waiting for the hold) or
    `hold` (the default again)."""
    path = agent_folder(workspace) / DECISIONS
    decisions = read_json(path, {})
    if decision == "hold":
        decisions.pop(incident_id, None)
    else:
        decisions[incident_id] = decision
    write_json(path, decisions)


@dataclass
class PublishPolicy:
    """Which incidents are due: severity, hold time since first known here, the analyst's decisions."""

    min_severity: int = 3
    hold: float = 300.0
    first_known: dict[str, float] = field(default_factory=dict)

    def due(self, documents: list[dict[str, Any]], decisions: dict[str, str], published: dict[str, str],
            now: float) -> list[str]:
        """Incidents to publish now: never published, or grown since (their new evidence leaves too)."""
        out = []
        for doc in documents:
            ident = str(doc.get("id", ""))
            if not ident or str(doc.get("state", "")) in {str(s) for s in CLOSED_STATES}:
                continue
            if int(doc.get("severity", 0)) < self.min_severity:
                continue
            decision = decisions.get(ident)
            if decision == "veto":
                continue
            if ident in published:
                if published[ident] != extent(doc):
                    out.append(ident)  # its hold passed (or was cut short) when it was first published
                continue
            seen = self.first_known.setdefault(ident, now)
            if decision == "now" or now - seen >= self.hold:
                out.append(ident)
        return out


def extent(doc: dict[str, Any]) -> str:
    """What an incident held when it was published: it is due again when it grows."""
    return f"{doc.get('alerts', 0)}|{doc.get('last_seen', '')}"


class AgentSwarm:
    """The node in a thread; `received()` gives the watchlist entries peers have sent so far."""

    def __init__(self, config: SwarmConfig, workspace: Path, organisation: str, store: Store) -> None:
        from healthswarm.swarm.config import NodeConfig
        from healthswarm.swarm.params import Params

        self.config = config
        self.workspace = workspace
        self.organisation = organisation
        self.name = config.name or organisation or "agent"
        self.store = store
        self.node_config = NodeConfig(workspace=workspace, name=self.name, listen=config.listen,
                                      seeds=list(config.seeds), params=Params(**config.params))
        self.policy = PublishPolicy(config.min_severity, config.hold)
        self.folder = agent_folder(workspace)
        stored = read_json(self.folder / PUBLISHED, {})
        # incident id → its extent when published (a list: written by an earlier version, extent unknown)
        self.published: dict[str, str] = dict.fromkeys(stored, "") if isinstance(stored, list) else dict(stored)
        self.published_items: list[str] = []
        self.publish_state = "off" if not config.publish else "waiting"
        self._received: dict[tuple[str, str], Watch] = {}
        # the node's round when each warning first arrived (None: held from an earlier run)
        self._arrived: dict[tuple[str, str], int | None] = {}
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self.runtime: Any = None
        self.started = threading.Event()
        self.error = ""
        self.on_accepted: Callable[[], None] | None = None  # a peer's warning became one to watch (any thread)

    # --- receiving ------------------------------------------------------------------------------

    def _on_item(self, item: Any, arrived: int | None = None) -> None:
        """A verified item reached the node (`arrived`: the round it did; None, held from an earlier run)."""
        raw = item.raw
        if raw.get("kind") not in ("indicator", "sighting") or item.org == self.name:
            return
        data = raw.get("data", {})
        kind, value = str(data.get("type", "")), str(data.get("value", ""))
        if kind not in TYPE_KINDS or not value:
            return
        watch = Watch(kind, value, f"swarm:{item.org}", int(data.get("confidence", 50)),
                      tuple(str(t) for t in data.get("techniques", []) if isinstance(t, str)))
        with self._lock:
            known = self._received.get((kind, value))
            if known is None or watch.confidence > known.confidence:
                self._received[(kind, value)] = watch
            self._arrived.setdefault((kind, value), arrived)

    def received(self) -> list[Watch]:
        """The peers' warnings to watch for: held long enough for refutations to arrive, and not disputed."""
        node = self.runtime.node if self.runtime is not None else None
        if node is None:
            return []
        settled = node.round - SETTLE_ROUNDS
        with self._lock:
            return [w for key, w in self._received.items()
                    if ((arrived := self._arrived[key]) is None or arrived <= settled)
                    and indicator_key(w.type, w.value) not in node.disputed]

    # --- running --------------------------------------------------------------------------------

    def start(self) -> None:
        self._thread = threading.Thread(target=self._main, name="agent-swarm", daemon=True)
        self._thread.start()
        self.started.wait(30)

    def stop(self, timeout: float = 10.0) -> None:
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        if self._thread is not None:
            self._thread.join(timeout)

    def _main(self) -> None:
        try:
            asyncio.run(self._run())
        except Exception as exc:  # the node could not start (address in use, bad keys): the agent runs on
            self.error = f"{type(exc).__name__}: {exc}"
            log.error("swarm node stopped: %s", self.error)
            self.started.set()

    async def _run(self) -> None:
        from healthswarm.swarm.runtime import NodeRuntime

        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        runtime = NodeRuntime(self.node_config, self.store)   # the agent's store, SQLite or PostgreSQL
        self.runtime = runtime
        for item in list(runtime.node.items.values()):  # what the item log kept from earlier runs
            self._on_item(item)
        runtime.node.listeners.append(lambda item: self._on_item(item, runtime.node.round))
        node_task = asyncio.create_task(runtime.run(self._stop))
        self.started.set()
        helpers = [asyncio.create_task(self._accepting())]
        if self.config.publish:
            helpers.append(asyncio.create_task(self._publisher()))
        await node_task
        for task in helpers:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _accepting(self) -> None:
        """Calls `on_accepted` when a peer's warning becomes one to watch: when it has settled (a round passed) or
        its dispute ended; looked at as often as the node's runtime steps, and only while warnings wait."""
        assert self._stop is not None
        params = self.node_config.params
        step = min(params.probe_timeout, params.period) / 4
        told: set[tuple[str, str]] = set()
        while not self._stop.is_set():
            if len(self._received) > len(told):
                accepted = {(w.type, w.value) for w in self.received()}
                if accepted - told:
                    told |= accepted
                    if self.on_accepted is not None:
                        self.on_accepted()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), step)

    async def _publisher(self) -> None:
        assert self._stop is not None
        while not self._stop.is_set():
            try:
                self.publish_due(time.time())
            except Exception as exc:
                log.warning("publishing failed; retried in %.0f s: %s", self.config.interval, exc)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), self.config.interval)

    def publish_due(self, now: float) -> list[str]:
        """Publish through the egress gate when an incident is due; the item ids published. Runs on the node's
        loop (the node is not thread-safe)."""
        with self.store.read() as conn:  # summaries of the open incidents the policy could publish, not documents
            documents, _ = incident_summaries(conn, min_severity=self.policy.min_severity, open_only=True)
        decisions = read_json(self.folder / DECISIONS, {})
        due = self.policy.due(documents, decisions, self.published, now)
        if not due:
            return []
        items = list(publish_from_store(self.store, self.runtime.node, self.workspace, self.organisation,
                                        incidents=set(due)))
        extents = {str(d.get("id", "")): extent(d) for d in documents}
        self.published.update({ident: extents[ident] for ident in due})
        write_json(self.folder / PUBLISHED, dict(sorted(self.published.items())))
        self.published_items.extend(items)
        self.publish_state = "publishing"
        log.info("published %d items for incidents %s", len(items), ", ".join(due))
        return items

    def status(self) -> dict[str, Any]:
        node = self.runtime.node if self.runtime is not None else None
        return {"name": self.name, "listen": self.config.listen, "error": self.error,
                "members_alive": _alive(node),
                "items": len(node.items) if node is not None else 0,
                "received_warnings": len(self._received),
                "refuted": dict(self.runtime.evidence.counts) if self.runtime is not None else {},
                "disputed": len(node.disputed) if node is not None else 0,
                "published_incidents": len(self.published),
                "published_items": len(self.published_items), "publishing": self.publish_state}


def _alive(node: Any) -> int:
    """Members this node believes alive (read from another thread: a count, best effort)."""
    try:
        return len(list(node.members.live())) if node is not None else 0
    except Exception:
        return 0
