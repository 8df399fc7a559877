"""What a scale-out role process (`agent run --role …`, alias `worker --role …`) is told: its role, where the store
and the bus are, the subjects it meets on, and the detection suite (the [detect] section of agent.toml).

Subjects (one stream holds `<prefix>.>`):
- `<prefix>.raw.<format>`: raw records from devices and collectors (`auto` sniffs the format);
- `<prefix>.events.p<k>.<format>`: stored events, `k` the partition of the event's `partition_key`;
- `<prefix>.alerts.p<k>`: stored alerts, in the partition of the events that raised them;
- `<prefix>.incidents`: the ids of the incidents each correlate batch wrote (JSON list), for the respond role;
- `<prefix>.dead.<role>`: messages a role gave up on after `max_deliveries` failures, with the reason.

Partitions: the detect role runs the whole suite, and its stateful detectors keep state per subject — the
per-asset baselines per source asset, the HL7 analytics per interface, the FHIR analytics and the privacy
monitor per user (whose reads the monitor joins to the care relationships of HL7 ADT and FHIR
Encounter/CareTeam, i.e. to the whole clinical feed). A detect worker bound to one partition
(`--partition k`) sees every event of that partition, so `partition_key` puts all events those detectors
must see together in one partition: one organisation's clinical events (HL7, FHIR, DICOM) together, and any
other event with the other events of its asset (the host whose log it is, else its source asset or address).
More partitions (one detect worker each) spread the assets, hence the load; the clinical feed of one
organisation stays on one worker. Sigma correlation rules are exact where their group-by fields are fixed by
that key (per host, per source address); one grouping by another field (a user across hosts, a destination)
counts what its partition saw.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from healthswarm.agent.config import AgentConfig, load_config
from healthswarm.agent.logs import redact
from healthswarm.errors import ConfigError
from healthswarm.model import Event

DEFAULT_NATS = "nats://127.0.0.1:4222"
DEFAULT_PREFIX = "healthswarm"
DEFAULT_STREAM = "HEALTHSWARM_WORK"
DEFAULT_MAX_DELIVERIES = 5
# how long JetStream remembers a Nats-Msg-Id: a relay re-publishing after a crash is dropped within it
DUPLICATE_WINDOW = 600.0
CLINICAL = frozenset({"hl7", "fhir", "dicom"})
_TOKEN = re.compile(r"^[A-Za-z0-9_-]+$")
_STREAM = re.compile(r"^[A-Za-z0-9_-]{1,200}$")


class Role(StrEnum):
    ingest = "ingest"
    detect = "detect"
    correlate = "correlate"
    respond = "respond"
    all = "all"

    def stages(self) -> tuple[Role, ...]:
        """`all` is the pipeline up to incidents (ingest, detect, correlate), not respond: respond acts on the world
        (playbooks' actions, the swarm node's publications), so it runs only where it is started by name, and a
        deployment that ran `--role all` before respond existed starts no actions by upgrading."""
        return (Role.ingest, Role.detect, Role.correlate) if self is Role.all else (self,)


def check_nats_url(url: str) -> str:
    parts = urlsplit(url)
    if parts.scheme not in ("nats", "tls") or not parts.hostname:
        raise ConfigError(f"--nats {redact(url)!r}: expected nats://host:port")
    try:
        port = parts.port
    except ValueError:
        raise ConfigError(f"--nats {redact(url)!r}: the port is not a number") from None
    if port is None:
        return urlunsplit((parts.scheme, f"{parts.netloc}:4222", parts.path, "", ""))
    return url


def partition_key(event: Event) -> str:
    """What keeps the events a stateful detector judges together on one detect partition (see the module)."""
    f = event.fields
    organisation = str(f.get("organization.id") or "")
    if f.get("observer.type") in CLINICAL:
        return f"clinical:{organisation}"
    asset = f.get("host.name") or f.get("source.asset.id") or f.get("source.ip")
    return f"asset:{organisation}:{asset}" if asset else f"organisation:{organisation}"


@dataclass(frozen=True)
class WorkerConfig:
    role: Role
    db: str
    nats: str = DEFAULT_NATS
    batch: int = 500
    max_in_flight: int = 5_000
    metrics_port: int | None = None
    prefix: str = DEFAULT_PREFIX
    stream: str = DEFAULT_STREAM
    partitions: int = 1
    # detect only: bind the partition's own durable (exact Sigma correlations); None shares every partition
    partition: int | None = None
    ack_wait: float = 30.0
    # seconds between flushes of what only time completes (Sigma correlations with lt/lte/neq conditions)
    flush_interval: float = 30.0
    organisation: str = ""
    rules: tuple[Path, ...] = ()  # detect: Sigma rules besides the [detect] packs and rules
    placeholders: dict[str, list[str]] = field(default_factory=dict)
    # agent.toml: the [detect] and [watchlist] sections the detect role builds its suite from; [respond], [risk]
    # and [swarm] for the respond role
    agent: AgentConfig = field(default_factory=lambda: load_config(None))
    # a message that failed this many times goes to <prefix>.dead.<role>
    max_deliveries: int = DEFAULT_MAX_DELIVERIES

    def __post_init__(self) -> None:
        for token in self.prefix.split("."):
            if not _TOKEN.match(token):
                raise ConfigError(f"--prefix {self.prefix!r}: expected dot-separated letters, digits, _ and -")
        if not _STREAM.match(self.stream):
            raise ConfigError(f"--stream {self.stream!r}: expected letters, digits, _ and - (a JetStream name)")
        if self.partition is not None and not 0 <= self.partition < self.partitions:
            raise ConfigError(f"--partition {self.partition}: expected 0 to {self.partitions - 1} (--partitions)")
        if self.flush_interval <= 0:
            raise ConfigError(f"--flush-interval {self.flush_interval}: expected a positive number of seconds")
        if self.partition is not None and self.role is not Role.detect:
            raise ConfigError("--partition: only the detect role binds one partition")
        if self.max_deliveries < 1:
            raise ConfigError(f"--max-deliveries {self.max_deliveries}: expected 1 or more")
        object.__setattr__(self, "nats", check_nats_url(self.nats))

    # --- subjects --------------------------------------------------------------------------------------

    def raw_subject(self, fmt: str) -> str:
        return f"{self.prefix}.raw.{fmt}"

    def event_subject(self, partition: int, fmt: str) -> str:
        return f"{self.prefix}.events.p{partition}.{fmt or 'unknown'}"

    def alert_subject(self, partition: int) -> str:
        return f"{self.prefix}.alerts.p{partition}"

    def incident_subject(self) -> str:
        return f"{self.prefix}.incidents"

    def dead_subject(self, stage: Role) -> str:
        return f"{self.prefix}.dead.{stage.value}"

    def filter_subject(self, stage: Role) -> str:
        """What the stage's durable consumer reads."""
        if stage is Role.ingest:
            return f"{self.prefix}.raw.>"
        if stage is Role.detect:
            return f"{self.prefix}.events.{'*' if self.partition is None else f'p{self.partition}'}.>"
        if stage is Role.respond:
            return self.incident_subject()
        return f"{self.prefix}.alerts.>"

    def group(self, stage: Role) -> str:
        """One consumer group per role (per partition for a partitioned detect): every worker of it shares the
        work. The bus names the group's durable after it and the subject it reads."""
        base = f"{self.prefix.replace('.', '_')}-{stage.value}"
        return base if stage is not Role.detect or self.partition is None else f"{base}-p{self.partition}"

    def partition_of(self, key: str) -> int:
        if self.partitions == 1:
            return 0
        return int.from_bytes(hashlib.blake2b(key.encode(), digest_size=4).digest(), "big") % self.partitions
