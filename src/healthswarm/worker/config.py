"""What a worker is told: its role, where the store and the bus are, and the subjects it meets on.

Subjects (one stream holds `<prefix>.>`):
- `<prefix>.raw.<format>`: raw records from devices and collectors (`auto` sniffs the format);
- `<prefix>.events.p<k>.<format>`: stored events, `k` the partition of the event's organisation/host;
- `<prefix>.alerts.p<k>`: stored alerts, in the partition of their first event.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from healthswarm.errors import ConfigError

DEFAULT_NATS = "nats://127.0.0.1:4222"
DEFAULT_PREFIX = "healthswarm"
DEFAULT_STREAM = "HEALTHSWARM_WORK"
_TOKEN = re.compile(r"^[A-Za-z0-9_-]+$")
_STREAM = re.compile(r"^[A-Za-z0-9_-]{1,200}$")
_PASSWORD_IN_URL = re.compile(r"(?P<scheme>[a-z][a-z0-9+.-]*://)(?P<user>[^:/@\s]*):[^@/\s]+@", re.IGNORECASE)


class Role(StrEnum):
    ingest = "ingest"
    detect = "detect"
    correlate = "correlate"
    all = "all"

    def stages(self) -> tuple[Role, ...]:
        return (Role.ingest, Role.detect, Role.correlate) if self is Role.all else (self,)


def redact(text: str) -> str:
    """Any `scheme://user:password@` in `text` with the password replaced: logs must hold no secrets."""
    return _PASSWORD_IN_URL.sub(lambda m: f"{m['scheme']}{m['user']}:***@", text)


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
    rules: tuple[Path, ...] = ()
    placeholders: dict[str, list[str]] = field(default_factory=dict)

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
        object.__setattr__(self, "nats", check_nats_url(self.nats))

    # --- subjects --------------------------------------------------------------------------------------

    def raw_subject(self, fmt: str) -> str:
        return f"{self.prefix}.raw.{fmt}"

    def event_subject(self, partition: int, fmt: str) -> str:
        return f"{self.prefix}.events.p{partition}.{fmt or 'unknown'}"

    def alert_subject(self, partition: int) -> str:
        return f"{self.prefix}.alerts.p{partition}"

    def filter_subject(self, stage: Role) -> str:
        """What the stage's durable consumer reads."""
        if stage is Role.ingest:
            return f"{self.prefix}.raw.>"
        if stage is Role.detect:
            return f"{self.prefix}.events.{'*' if self.partition is None else f'p{self.partition}'}.>"
        return f"{self.prefix}.alerts.>"

    def durable(self, stage: Role) -> str:
        """One durable per role (per partition for a partitioned detect): every worker of it shares the work."""
        base = f"{self.prefix.replace('.', '_')}-{stage.value}"
        return base if stage is not Role.detect or self.partition is None else f"{base}-p{self.partition}"

    def partition_of(self, key: str) -> int:
        if self.partitions == 1:
            return 0
        return int.from_bytes(hashlib.blake2b(key.encode(), digest_size=4).digest(), "big") % self.partitions
