"""Prometheus metrics of an embedded agent (its own registry, served at /metrics)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

REGISTRY = CollectorRegistry()

EVENTS_STORED = Counter("healthswarm_agent_events_stored", "Events newly stored by the agent's sources",
                        registry=REGISTRY)
EVENTS_JUDGED = Counter("healthswarm_agent_events_judged", "Stored events run through every detector",
                        registry=REGISTRY)
ALERTS = Counter("healthswarm_agent_alerts", "Alerts newly stored", ["detector"], registry=REGISTRY)
INCIDENTS = Counter("healthswarm_agent_incidents_written", "Incident rows written (new or changed)",
                    registry=REGISTRY)
BACKLOG = Gauge("healthswarm_agent_backlog", "Stored events not yet judged by detection", registry=REGISTRY)
WATCHLIST = Gauge("healthswarm_agent_watchlist", "Values on the watchlist", registry=REGISTRY)
RETRO_HUNTS = Counter("healthswarm_agent_retro_hunts", "Values hunted for in the stored events", registry=REGISTRY)
FAILURES = Counter("healthswarm_agent_failures", "Steps that failed and were retried", ["stage"],
                   registry=REGISTRY)
STEP_SECONDS = Histogram("healthswarm_agent_step_seconds", "One detection step: read, detect, correlate, commit",
                         buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10), registry=REGISTRY)
STORE_TO_INCIDENT = Histogram(
    "healthswarm_agent_store_to_incident_seconds",
    "From an event's batch being stored to the incident its alert joined being committed",
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30), registry=REGISTRY)
