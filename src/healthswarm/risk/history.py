"""The risk of each organisation over time: one row per organisation per assessment, written whenever risk is
assessed (`healthswarm risk assess`, the agent's live risk), read by the dashboard's panel and the reports' plot.

A row holds the figures `risk assess` shows for the organisation (`risk.assess.Exposure`): the worst attacker
profile's expected harm — Σ p × harm over the assets that profile reaches there — with that profile and its
assets at risk, and every profile's pair. An organisation no profile reaches is recorded at zero, so a line
that falls to zero means the risk went away, not that nobody looked.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, insert, select

from healthswarm.risk.assess import Exposure, assess
from healthswarm.risk.attack_graph import AttackGraph
from healthswarm.store import Store
from healthswarm.store.tables import risk_history

MAX_POINTS = 5_000  # per read: a plot has no use for more


@dataclass(frozen=True, slots=True)
class RiskPoint:
    assessed_at: datetime
    organisation: str
    expected_harm: float  # the worst profile's, on this organisation
    profile: str  # that profile ("" when none reaches the organisation)
    assets_at_risk: int  # that profile's
    profiles: dict[str, dict[str, float]] = field(default_factory=dict)
    source: str = "risk assess"

    def as_dict(self) -> dict[str, Any]:
        return {"assessed_at": self.assessed_at.isoformat(), "organisation": self.organisation,
                "expected_harm": round(self.expected_harm, 4), "profile": self.profile,
                "assets_at_risk": self.assets_at_risk, "profiles": self.profiles, "source": self.source}


def points(exposures: list[Exposure], organisations: list[str], when: datetime,
           source: str = "risk assess") -> list[RiskPoint]:
    """One point per organisation from one assessment (every profile, entries anywhere)."""
    per_org: dict[str, list[Exposure]] = {o: [] for o in organisations}
    for e in exposures:
        per_org.setdefault(e.organisation, []).append(e)
    out = []
    for org, items in sorted(per_org.items()):
        worst = max(items, key=lambda e: (e.expected_harm, e.profile), default=None)
        out.append(RiskPoint(
            when, org, round(worst.expected_harm, 4) if worst else 0.0, worst.profile if worst else "",
            worst.assets_at_risk if worst else 0,
            {e.profile: {"expected_harm": round(e.expected_harm, 4), "assets_at_risk": e.assets_at_risk}
             for e in sorted(items, key=lambda e: e.profile)}, source))
    return out


def record(conn: Connection, found: list[RiskPoint]) -> int:
    if found:
        conn.execute(insert(risk_history), [
            {"assessed_at": p.assessed_at, "organisation": p.organisation, "expected_harm": p.expected_harm,
             "profile": p.profile, "assets_at_risk": p.assets_at_risk, "profiles": p.profiles, "source": p.source}
            for p in found])
    return len(found)


def record_exposures(store: Store, graph: AttackGraph, exposures: list[Exposure], source: str = "risk assess",
                     when: datetime | None = None) -> list[RiskPoint]:
    """Store one assessment's exposures (every profile, entries anywhere) as one point per organisation."""
    found = points(exposures, sorted(graph.facts.org_kind), when or datetime.now(UTC), source)
    with store.transaction() as conn:
        record(conn, found)
    return found


def assess_and_record(store: Store, graph: AttackGraph, source: str = "agent",
                      when: datetime | None = None) -> list[RiskPoint]:
    """Assess every attacker profile on `graph` (what `risk assess` does) and store the points: the agent's way."""
    return record_exposures(store, graph, assess(graph), source, when)


def load_history(conn: Connection, organisation: str | None = None, since: datetime | None = None,
                 limit: int = MAX_POINTS) -> list[RiskPoint]:
    """The points in time order (the newest `limit` of them), of one organisation or all."""
    query = select(risk_history).order_by(risk_history.c.assessed_at.desc(), risk_history.c.organisation)
    if organisation is not None:
        query = query.where(risk_history.c.organisation == organisation)
    if since is not None:
        query = query.where(risk_history.c.assessed_at >= since)
    rows = conn.execute(query.limit(limit)).all()
    return [RiskPoint(_utc(r.assessed_at), r.organisation, r.expected_harm, r.profile, r.assets_at_risk,
                      r.profiles, r.source) for r in reversed(rows)]


def series(found: list[RiskPoint]) -> dict[str, list[RiskPoint]]:
    """The points per organisation, each in time order (what a line chart draws)."""
    out: dict[str, list[RiskPoint]] = {}
    for p in found:
        out.setdefault(p.organisation, []).append(p)
    return dict(sorted(out.items()))


def _utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
