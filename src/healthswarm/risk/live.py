"""Live risk: where an incident's attacker goes next, updated incrementally as incidents arrive.

One `LiveTracker` per attack graph holds one `LiveRisk` (one view, built once). A foothold is searched
once — one bounded Dijkstra from `admin` on the asset, on the shared view — and its reach is kept; an
incident's predictions are the best of its footholds' reaches (exact: the most likely way from a set
of footholds is the most likely way from one of them). A new incident therefore costs one search per
asset not seen before, never a new view; `work` counts what was done so that this can be checked.
`annotate_incidents` writes the predictions into each open incident's stored document
(`predicted_next`), where the API and the dashboard read them.

Predictions follow from the incident (`risk.actor.read_incident`): its footholds with the
privileges its alerts show, and its actor profile. A network intruder and an insider who misuses
their access move differently, so each actor profile has its own tracker (its own view: skill,
kinds of move, the insider's data access), each incremental as above.
"""

from __future__ import annotations

import math
import weakref
from collections.abc import Iterable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from typing import Any

import networkx as nx

from healthswarm.model.incident import CLOSED_STATES
from healthswarm.risk.actor import Actor, Reading, data_access_moves, read_incident
from healthswarm.risk.assess import assess
from healthswarm.risk.attack_graph import SOURCE, AttackGraph, build_attack_graph
from healthswarm.risk.history import record_exposures
from healthswarm.risk.states import COMPROMISE, Privilege, asset_node
from healthswarm.risk.whatif import AtRisk, LiveRisk, reach_from
from healthswarm.store import Store
from healthswarm.store.alerts import alerts_by_id, load_incident, load_incidents, update_incident_document
from healthswarm.store.inventory import load_inventory
from healthswarm.store.vulns import load_findings


@dataclass(frozen=True, slots=True)
class Prediction:
    asset: str
    organisation: str
    privilege: str
    probability: float
    harm: float
    how: str  # the last move of the most likely way there, explained
    via: str = ""  # the incident asset it starts from

    @property
    def risk(self) -> float:
        return self.probability * self.harm

    def as_dict(self) -> dict[str, Any]:
        return {"asset": self.asset, "organisation": self.organisation, "privilege": self.privilege,
                "probability": round(self.probability, 4), "harm": round(self.harm, 4),
                "risk": round(self.risk, 4), "how": self.how, "via": self.via}


@dataclass
class Work:
    """What a recompute did, in counts: moves scanned to build views, searches run, states settled."""

    moves_scanned: int = 0
    searches: int = 0
    states_settled: int = 0

    @property
    def total(self) -> int:
        return self.moves_scanned + self.states_settled


class LiveTracker:
    """The incremental predictor of one attack graph for one actor profile (see the module docstring)."""

    def __init__(self, graph: AttackGraph, skill: int = 2, min_p: float = 0.01, actor: Actor | None = None) -> None:
        self.graph = graph
        self.actor = actor
        if actor is not None:
            extra = data_access_moves(graph.facts) if actor.data_access else []
            self.live = LiveRisk(graph, skill=actor.skill, min_p=min_p, kinds=actor.kinds, extra=extra)
        else:
            self.live = LiveRisk(graph, skill=skill, min_p=min_p)
        self.work = Work(moves_scanned=graph.edge_count)  # the one view LiveRisk built
        # per foothold (asset, privilege): every asset it reaches, best privilege
        self.reach: dict[tuple[str, Privilege], list[AtRisk]] = {}
        self.at_risk: dict[str, AtRisk] = {}  # the ecosystem-wide picture over all footholds so far

    def add_foothold(self, asset: str, privilege: Privilege = Privilege.ADMIN) -> list[AtRisk]:
        """Search from a new foothold (once); returns what it reaches on its own."""
        key = (asset, privilege)
        if key in self.reach:
            return self.reach[key]
        # LiveRisk reports what a foothold *improves*; searched against an empty record it reports all
        # it reaches. The ecosystem-wide record is merged back afterwards.
        known, footholds = self.live.best, self.live.footholds
        self.live.best, self.live.footholds = {}, []
        try:
            found = self.live.add_foothold(asset, privilege)
            self.work.searches += 1
            self.work.states_settled += len(self.live.best)
            for state, p in self.live.best.items():
                known[state] = max(p, known.get(state, 0.0))
        finally:
            self.live.best, self.live.footholds = known, [*footholds, asset]
        self.reach[key] = found
        for r in found:
            current = self.at_risk.get(r.asset)
            if current is None or r.p * r.harm > current.p * current.harm:
                self.at_risk[r.asset] = r
        return found

    def predict(self, assets: Iterable[str], k: int = 5) -> list[Prediction]:
        """The k likeliest-and-most-harmful next targets of an attacker holding `assets` as admin
        (unknown ids ignored): the what-if reading, when nothing more is known."""
        return self.predict_from([(a, Privilege.ADMIN) for a in assets], k)

    def predict_from(self, footholds: Iterable[tuple[str, Privilege]], k: int = 5,
                     exclude: Iterable[str] = ()) -> list[Prediction]:
        """The k next targets of an attacker holding each asset with its privilege; the held assets
        and `exclude` (the rest of what the incident names) are not next targets."""
        held = [(a, p) for a, p in dict.fromkeys(footholds) if a in self.graph.facts.assets]
        skip = {a for a, _ in held} | set(exclude)
        best: dict[str, Prediction] = {}
        for foothold, privilege in held:
            for r in self.add_foothold(foothold, privilege):
                if r.asset in skip:
                    continue
                p = Prediction(r.asset, r.organisation, r.privilege, r.p, r.harm, r.next_move, foothold)
                if r.asset not in best or _better(p, best[r.asset]):
                    best[r.asset] = p
        return sorted(best.values(), key=_order)[:k]


def _better(a: Prediction, b: Prediction) -> bool:
    return _order(a) < _order(b)


def _order(p: Prediction) -> tuple[float, float, str, str]:
    return (-round(p.risk, 12), -round(p.probability, 12), p.asset, p.via)


_TRACKERS: dict[int, dict[Actor | None, LiveTracker]] = {}


def tracker_for(graph: AttackGraph, actor: Actor | None = None) -> LiveTracker:
    """The one tracker of `graph` for `actor` (None: the what-if reading), made on first use and
    dropped with the graph."""
    key = id(graph)
    if key not in _TRACKERS:
        _TRACKERS[key] = {}
        weakref.finalize(graph, _TRACKERS.pop, key, None)
    trackers = _TRACKERS[key]
    if actor not in trackers:
        trackers[actor] = LiveTracker(graph, actor=actor)
    return trackers[actor]


def predict_next(graph: AttackGraph, incident_assets: Iterable[str], k: int = 5) -> list[Prediction]:
    """The likely next targets of an attacker holding `incident_assets` as admin, from `graph`'s tracker."""
    return tracker_for(graph).predict(incident_assets, k)


def predict_incident(graph: AttackGraph, reading: Reading, k: int = 5) -> list[Prediction]:
    """The likely next targets of an incident as `risk.actor.read_incident` read it: from the
    footholds and privileges it shows, moving as its actor can; none when it shows no foothold."""
    if not reading.footholds:
        return []
    tracker = tracker_for(graph, reading.actor)
    return tracker.predict_from([(f.asset, f.privilege) for f in reading.footholds], k, exclude=reading.seen)


def full_recompute(graph: AttackGraph, incident_assets: Iterable[str], k: int = 5,
                   skill: int = 2, min_p: float = 0.01) -> tuple[list[Prediction], Work]:
    """The same answer from scratch (a new view with the footholds, one search): the reference the
    incremental tracker is checked and measured against."""
    held = [a for a in dict.fromkeys(incident_assets) if a in graph.facts.assets]
    footholds = [(asset_node(a, Privilege.ADMIN), 1.0, f"{a} is compromised") for a in held]
    view = graph.view(None, skill=skill, footholds=footholds)
    reached = [r for r in reach_from(graph, view, min_p) if r.asset not in held]
    settled = nx.single_source_dijkstra_path_length(view, SOURCE, cutoff=-math.log(min_p), weight="w")
    wanted = {q.value for q in COMPROMISE}
    work = Work(moves_scanned=graph.edge_count, searches=1,
                states_settled=sum(1 for n in settled if n.kind == "asset" and n.privilege in wanted))
    found = [Prediction(r.asset, r.organisation, r.privilege, r.p, r.harm, r.next_move) for r in reached]
    return sorted(found, key=_order)[:k], work


def annotate_incidents(store: Store, graph: AttackGraph | None = None, k: int = 5,
                       only: Iterable[str] | None = None) -> int:
    """Store `predicted_next`, `predicted_from` (the footholds used) and `predicted_basis` (the actor,
    the footholds with their privileges and evidence, and why) in every open incident's document (with
    `only`: in those of these ids that are open, e.g. the incidents changed since the last call);
    the graph is built from the stored inventory and findings unless given. Returns how many
    incidents were annotated."""
    with store.read() as conn:
        found = load_incidents(conn) if only is None else [
            i for i in (load_incident(conn, ident) for ident in dict.fromkeys(only)) if i is not None]
        documents = [i.as_dict() for i in found if i.state not in CLOSED_STATES]
        alerts = alerts_by_id(conn, (i for d in documents for i in d.get("alert_ids", []))) if documents else {}
        if graph is None and documents:
            graph = build_attack_graph(load_inventory(conn), load_findings(conn))
    if graph is None:
        return 0
    updates = {}
    for doc in documents:
        own = [alerts[i] for i in doc.get("alert_ids", []) if i in alerts]
        reading = read_incident(doc, own, graph.facts.assets)
        predicted = predict_incident(graph, reading, k)
        if reading.footholds and not predicted:
            reading.reasons.append("from these footholds this actor reaches nothing beyond what the incident "
                                   "already names")
        updates[doc["id"]] = {"predicted_next": [p.as_dict() for p in predicted],
                              "predicted_from": [f.asset for f in reading.footholds],
                              "predicted_basis": reading.as_dict()}
    with store.transaction() as conn:
        return sum(update_incident_document(conn, ident, fields) for ident, fields in updates.items())


class LiveAnnotator:
    """Live risk over the incidents a running pipeline changes (the embedded agent's and the scale-out respond
    role's): the attack graph is built at the first pass that finds an inventory stored, from it and the findings,
    with a point of each organisation's risk over time (the dashboard's); each pass annotates the incidents it is
    given. `write_lock` serialises the writes with the other writers of the process (the embedded agent's
    one-writer store); a process with no other writer gives none."""

    def __init__(self, store: Store, write_lock: AbstractContextManager[Any] | None = None) -> None:
        self.store = store
        self.write_lock = write_lock or nullcontext()
        self.graph: AttackGraph | None = None

    def annotate(self, only: Iterable[str] | None) -> int | None:
        """Annotate the open incidents among `only` (None: every open incident); how many were annotated, or None
        while no inventory is stored (nothing to predict on: the caller keeps them for a later pass)."""
        if self.graph is None:
            with self.store.read() as conn:
                inventory = load_inventory(conn)
                if not inventory.assets:
                    return None
                self.graph = build_attack_graph(inventory, load_findings(conn))
            exposures = assess(self.graph)  # CPU, outside the lock
            with self.write_lock:
                record_exposures(self.store, self.graph, exposures, source="agent")
        with self.write_lock:
            return annotate_incidents(self.store, self.graph, only=only)
