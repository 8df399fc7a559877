"""Prometheus metrics of a scale-out role process (one process, one registry); `role` labels the stage a figure
is about."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

REGISTRY = CollectorRegistry()

MESSAGES = Counter("healthswarm_worker_messages", "Messages taken from JetStream and acked", ["role"],
                   registry=REGISTRY)
EVENTS_IN = Counter("healthswarm_worker_events_in", "Events parsed (ingest) or read (detect)", ["role"],
                    registry=REGISTRY)
EVENTS_STORED = Counter("healthswarm_worker_events_stored", "Events newly stored (ingest)", registry=REGISTRY)
REJECTS = Counter("healthswarm_worker_rejects", "Records that could not be parsed (quarantined)", registry=REGISTRY)
ALERTS = Counter("healthswarm_worker_alerts", "Alerts newly stored (detect; respond: retro-hunts)", registry=REGISTRY)
RETRO_HUNTS = Counter("healthswarm_worker_retro_hunts",
                      "Values of peers' warnings hunted for in the stored events (respond)", registry=REGISTRY)
INCIDENTS = Counter("healthswarm_worker_incidents_updated", "Incidents written (correlate)", registry=REGISTRY)
REDELIVERED = Counter("healthswarm_worker_redelivered",
                      "Messages delivered again after this worker had fed them to its stage (not fed twice)",
                      ["role"], registry=REGISTRY)
FAILURES = Counter("healthswarm_worker_batch_failures", "Batches that failed and were nak'ed", ["role"],
                   registry=REGISTRY)
PUBLISHED = Counter("healthswarm_worker_outbox_published", "Outbox messages published (events, alerts, incidents out)",
                    ["kind"], registry=REGISTRY)
HANDOFFS_DROPPED = Counter("healthswarm_worker_outbox_handoffs_dropped",
                           "Outbox rows a role handed to a relay too far behind, left to the relays' claims",
                           registry=REGISTRY)
LAG = Gauge("healthswarm_worker_consumer_pending", "Messages the role's durable consumer has not delivered yet",
            ["role"], registry=REGISTRY)
OUTBOX_BACKLOG = Gauge("healthswarm_worker_outbox_backlog", "Outbox messages not published yet", registry=REGISTRY)
BATCH_SECONDS = Histogram("healthswarm_worker_batch_seconds", "Time to process and commit one batch", ["role"],
                          buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30), registry=REGISTRY)
EVENT_TO_ALERT = Histogram(
    "healthswarm_worker_event_to_alert_seconds",
    "From the raw record entering JetStream (oldest of its ingest batch) to its alert being committed",
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 120), registry=REGISTRY)
EVENT_TO_INCIDENT = Histogram(
    "healthswarm_worker_event_to_incident_seconds",
    "From the raw record entering JetStream (oldest of its ingest batch) to its alert's incident committed",
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2, 3, 4, 5, 7.5, 10, 30, 60, 120, 300), registry=REGISTRY)
EVENT_TO_RESPONSE = Histogram(
    "healthswarm_worker_event_to_response_seconds",
    "From the raw record entering JetStream (oldest of its ingest batch) to its incident's live risk and playbooks "
    "committed (respond)",
    buckets=(0.1, 0.25, 0.5, 1, 2, 3, 4, 5, 7.5, 10, 30, 60, 120, 300), registry=REGISTRY)
CASES_OPENED = Counter("healthswarm_worker_cases_opened", "Cases opened by policy (respond)", registry=REGISTRY)
PLAYBOOKS_STARTED = Counter("healthswarm_worker_playbooks_started", "Playbooks started by policy (respond)",
                            registry=REGISTRY)
DEAD_LETTERS = Counter("healthswarm_worker_dead_letters",
                       "Messages given up on after --max-deliveries failures, published to <prefix>.dead.<role>",
                       ["role"], registry=REGISTRY)

# where the time goes (bench/scale.py reads these): per part of a role's loop or of the relay, the wall seconds
# spent in it and the CPU seconds of the thread doing it; and the CPU of every thread of the process (the bus's
# event-loop thread does the NATS work of every role and of the relay)
PART_SECONDS = Counter("healthswarm_worker_part_seconds", "Wall seconds spent in a part of a loop",
                       ["part"], registry=REGISTRY)
PART_CPU_SECONDS = Counter("healthswarm_worker_part_cpu_seconds", "CPU seconds of the thread in a part of a loop",
                           ["part"], registry=REGISTRY)
THREAD_CPU_SECONDS = Gauge("healthswarm_worker_thread_cpu_seconds", "CPU seconds of each thread of the process",
                           ["thread"], registry=REGISTRY)


@contextmanager
def timed(part: str) -> Iterator[None]:
    """Adds the wall and thread-CPU seconds of the block to `part`."""
    wall, cpu = time.perf_counter(), time.thread_time()
    try:
        yield
    finally:
        PART_SECONDS.labels(part).inc(time.perf_counter() - wall)
        PART_CPU_SECONDS.labels(part).inc(time.thread_time() - cpu)


def sample_thread_cpu() -> None:
    """The CPU seconds of every live thread, by name (threads of one name summed)."""
    totals: dict[str, float] = {}
    for thread in threading.enumerate():
        if thread.ident is None:
            continue
        try:
            cpu = time.clock_gettime(time.pthread_getcpuclockid(thread.ident))
        except (OSError, ProcessLookupError):  # ended meanwhile
            continue
        totals[thread.name] = totals.get(thread.name, 0.0) + cpu
    for name, cpu in totals.items():
        THREAD_CPU_SECONDS.labels(name).set(cpu)
