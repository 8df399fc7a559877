"""agent.toml: what one agent reads, detects, shares and serves. `healthswarm agent init-config` writes
`DEFAULT_CONFIG` (every key with its default and a comment); every key may be left out.

Relative paths are relative to the file. Unknown keys are an error (a typo would otherwise silently turn
a source or a policy off), reported as `<file>: <section>.<key>: …`.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from healthswarm.errors import ConfigError
from healthswarm.respond.policy import ResponsePolicy

DEFAULT_CONFIG = """\
# healthswarm agent configuration (`healthswarm agent run --config agent.toml`).
# Every key is optional; the values below are the defaults. Relative paths are relative to this file.

[agent]
organisation = ""            # the inventory organisation this agent watches (default: the workspace's)
health = "127.0.0.1:9108"    # /healthz, /readyz and /metrics ("" turns them off; port 0 picks a free one)
status_file = true           # write <workspace>/agent/status.json (the address actually bound, counts)
ingest_process = "auto"      # the sources in a process of their own, detection keeps this one's core:
                             # "auto" = with 2 or more CPUs; true; false = one process
respond_process = "auto"     # playbooks by policy ([respond]) and live risk ([risk]) in a process of their own,
                             # off detection's interpreter: "auto" = with 2 or more CPUs; true; false = threads
                             # of this one

# Log files: each [[sources.files]] table follows files as they grow, across rotation (rename + new
# file, copy-truncate) and restarts (checkpoints in the store). Folders are followed file by file (new
# files are picked up within `rescan` seconds); names that look rotated (app.log.1, app.log.2.gz,
# app-20261201) are skipped, they are the same lines the live file held.
[[sources.files]]
paths = []                   # files, folders or globs ("logs/*.json", "/var/log/suricata/eve.json")
format = ""                  # "" detects each file's format (suricata, windows-json, hl7, fhir, syslog, …)
rescan = 2.0                 # seconds between looks for new files

[sources.syslog]
udp = ""                     # e.g. "0.0.0.0:514" (RFC 5424 and 3164 over UDP)
tcp = ""                     # e.g. "0.0.0.0:601" (octet counting or newline framing)
tls_cert = ""                # PEM certificate and key: TCP inside TLS (RFC 5425); "" for plain TCP
tls_key = ""
batch = 2000                 # messages per store transaction (or what arrived within `latency` seconds)
latency = 0.2

[sources.mqtt]
urls = []                    # mqtt://host:port/topic (QoS 1, acked after the store commit)
format = ""

[sources.nats]
urls = []                    # nats://host:port/subject (JetStream durable consumer, acked after the commit)
format = ""

[sources.stdin]
enabled = false              # read standard input to its end (then the other sources go on)
format = ""

[detect]
packs = []                   # bundled Sigma rule packs; [] = the default packs of this version
rules = []                   # further Sigma rule files or folders
staff = ""                   # a staff directory (YAML): turns on patient-privacy monitoring
models = []                  # trained models in <workspace>/models to run as detectors
baselines = true             # per-asset baselines
clinical = true              # HL7 / DICOM / FHIR protocol analytics
batch = 2000                 # stored events per detection step
flush_interval = 30.0        # seconds between judgements of what only time completes (Sigma `lt` rules)

[risk]
live = true                  # predicted next targets in each open incident, updated as incidents change
interval = 2.0               # at most this often (seconds)

[watchlist]
refresh = 5.0                # seconds between reloads of peers' indicators and the responders' watchlist
min_confidence = 0           # ignore indicators below this confidence (0-100)
retro_hunt = true            # hunt the stored events for each newly received indicator

[swarm]
enabled = false              # run the swarm node in this process
listen = "127.0.0.1:7400"
seeds = []                   # other nodes, host:port
name = ""                    # this node's organisation name (default: [agent] organisation)
publish = true               # publish to peers (only through the egress gate) by the policy below
min_severity = 3             # incidents at or above this severity (0 informational … 4 critical) …
hold = 300.0                 # … once they are this many seconds old here (an analyst's window to veto)
interval = 5.0               # seconds between looks at what is due

[swarm.params]               # protocol parameters (swarm/params.py), e.g. period = 1.0

# Playbooks by policy: an incident correlation opens or grows that the policy covers gets its case (opened or
# brought up to date) and its playbooks started. Actions of `auto_actions` kinds run; every other action waits
# in the case as a task for an analyst. The patient-safety guardrail always applies: isolating a safety-critical
# device or stopping a clinical system in use waits for an analyst's approval whatever this section says.
# A playbook starts once per incident, across restarts (the case's audit log records each start).
[respond]
enabled = true
min_severity = 3             # incidents at or above this severity (0 informational … 4 critical) …
techniques = []              # … or showing one of these ATT&CK techniques ("T1486"; sub-techniques match) …
tactics = []                 # … or one of these tactics (short names: "impact", "exfiltration") …
safety_critical = true       # … or involving an asset of high safety criticality (life-critical devices)
playbooks = ["auto"]         # library playbooks by name or file stem; "auto" picks them by what the case shows
auto_actions = ["dns-sinkhole", "watchlist-add", "notify-webhook", "notify-email"]  # kinds run without an analyst

[api]
enabled = false              # the REST API and the dashboard in this process
listen = "127.0.0.1:8000"
"""


@dataclass(frozen=True)
class FileSource:
    paths: tuple[str, ...] = ()
    format: str = ""
    rescan: float = 2.0


@dataclass(frozen=True)
class SyslogSource:
    udp: str = ""
    tcp: str = ""
    tls_cert: str = ""
    tls_key: str = ""
    batch: int = 2000
    latency: float = 0.2

    @property
    def enabled(self) -> bool:
        return bool(self.udp or self.tcp)


@dataclass(frozen=True)
class UrlSource:
    urls: tuple[str, ...] = ()
    format: str = ""


@dataclass(frozen=True)
class StdinSource:
    enabled: bool = False
    format: str = ""


@dataclass(frozen=True)
class DetectConfig:
    packs: tuple[str, ...] = ()
    rules: tuple[str, ...] = ()
    staff: str = ""
    models: tuple[str, ...] = ()
    baselines: bool = True
    clinical: bool = True
    batch: int = 2000
    flush_interval: float = 30.0


@dataclass(frozen=True)
class RiskConfig:
    live: bool = True
    interval: float = 2.0


@dataclass(frozen=True)
class WatchlistConfig:
    refresh: float = 5.0
    min_confidence: int = 0
    retro_hunt: bool = True


@dataclass(frozen=True)
class SwarmConfig:
    enabled: bool = False
    listen: str = "127.0.0.1:7400"
    seeds: tuple[str, ...] = ()
    name: str = ""
    publish: bool = True
    min_severity: int = 3
    hold: float = 300.0
    interval: float = 5.0
    params: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class RespondConfig(ResponsePolicy):
    """The policy (respond/policy.py), and whether the agent applies it."""

    enabled: bool = True


@dataclass(frozen=True)
class ApiConfig:
    enabled: bool = False
    listen: str = "127.0.0.1:8000"


@dataclass(frozen=True)
class AgentConfig:
    organisation: str = ""
    health: str = "127.0.0.1:9108"
    status_file: bool = True
    ingest_process: bool | str = "auto"  # True, False or "auto" (agent/ingest_process.py `wanted`)
    respond_process: bool | str = "auto"  # True, False or "auto" (agent/respond_process.py `wanted`)
    files: tuple[FileSource, ...] = ()
    syslog: SyslogSource = field(default_factory=SyslogSource)
    mqtt: UrlSource = field(default_factory=UrlSource)
    nats: UrlSource = field(default_factory=UrlSource)
    stdin: StdinSource = field(default_factory=StdinSource)
    detect: DetectConfig = field(default_factory=DetectConfig)
    risk: RiskConfig = field(default_factory=RiskConfig)
    watchlist: WatchlistConfig = field(default_factory=WatchlistConfig)
    swarm: SwarmConfig = field(default_factory=SwarmConfig)
    respond: RespondConfig = field(default_factory=RespondConfig)
    api: ApiConfig = field(default_factory=ApiConfig)
    base: Path = Path(".")  # the folder relative paths are resolved against

    def path(self, text: str) -> Path:
        p = Path(text).expanduser()
        return p if p.is_absolute() else self.base / p


# --- reading ----------------------------------------------------------------------------------------

def _typed(where: str, value: Any, default: Any) -> Any:
    if isinstance(default, bool):
        if not isinstance(value, bool):
            raise ConfigError(f"{where}: expected true or false, got {value!r}")
        return value
    if isinstance(default, int):
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{where}: expected an integer, got {value!r}")
        return value
    if isinstance(default, float):
        if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
            raise ConfigError(f"{where}: expected a number ≥ 0, got {value!r}")
        return float(value)
    if isinstance(default, str):
        if not isinstance(value, str):
            raise ConfigError(f"{where}: expected a string, got {value!r}")
        return value
    if isinstance(default, tuple):
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise ConfigError(f"{where}: expected a list of strings, got {value!r}")
        return tuple(value)
    if isinstance(default, dict):
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: expected a table")
        return dict(value)
    raise ConfigError(f"{where}: unsupported value {value!r}")


def _section(kind: type[Any], where: str, table: Any) -> Any:
    if not isinstance(table, dict):
        raise ConfigError(f"{where}: expected a table [{where.split(': ', 1)[-1]}]")
    defaults = kind()
    allowed = {name: getattr(defaults, name) for name in kind.__dataclass_fields__}
    values = {}
    for key, value in table.items():
        if key not in allowed:
            raise ConfigError(f"{where}.{key}: unknown key (expected one of {', '.join(allowed)})")
        values[key] = _typed(f"{where}.{key}", value, allowed[key])
    return kind(**values)


def parse_config(data: dict[str, Any], origin: str = "agent.toml", base: Path = Path(".")) -> AgentConfig:
    known = {"agent", "sources", "detect", "risk", "watchlist", "swarm", "respond", "api"}
    if unknown := sorted(set(data) - known):
        raise ConfigError(f"{origin}: {unknown[0]}: unknown section (expected one of {', '.join(sorted(known))})")
    agent = data.get("agent", {})
    if not isinstance(agent, dict):
        raise ConfigError(f"{origin}: agent: expected a table [agent]")
    processes = ("ingest_process", "respond_process")
    top = {"organisation": "", "health": "127.0.0.1:9108", "status_file": True, **dict.fromkeys(processes, "auto")}
    for key in agent:
        if key not in top:
            raise ConfigError(f"{origin}: agent.{key}: unknown key (expected one of {', '.join(top)})")
    values: dict[str, Any] = {k: _typed(f"{origin}: agent.{k}", v, top[k]) for k, v in agent.items()
                              if k not in processes}
    for key in processes:
        if key in agent:
            if not (isinstance(agent[key], bool) or agent[key] == "auto"):
                raise ConfigError(f"{origin}: agent.{key}: expected \"auto\", true or false, got {agent[key]!r}")
            values[key] = agent[key]
    sources = data.get("sources", {})
    if not isinstance(sources, dict):
        raise ConfigError(f"{origin}: sources: expected a table")
    kinds = {"files": FileSource, "syslog": SyslogSource, "mqtt": UrlSource, "nats": UrlSource, "stdin": StdinSource}
    for key in sources:
        if key not in kinds:
            raise ConfigError(f"{origin}: sources.{key}: unknown source (expected one of {', '.join(kinds)})")
    files = sources.get("files", [])
    if isinstance(files, dict):
        files = [files]
    if not isinstance(files, list):
        raise ConfigError(f"{origin}: sources.files: expected [[sources.files]] tables")
    values["files"] = tuple(_section(FileSource, f"{origin}: sources.files[{i}]", t) for i, t in enumerate(files))
    for key in ("syslog", "mqtt", "nats", "stdin"):
        if key in sources:
            values[key] = _section(kinds[key], f"{origin}: sources.{key}", sources[key])
    sections = {"detect": DetectConfig, "risk": RiskConfig,
                "watchlist": WatchlistConfig, "swarm": SwarmConfig, "respond": RespondConfig, "api": ApiConfig}
    for key, kind in sections.items():
        if key in data:
            values[key] = _section(kind, f"{origin}: {key}", data[key])
    config = AgentConfig(base=base, **values)
    for key in ("swarm", "respond"):
        if not 0 <= getattr(config, key).min_severity <= 4:
            raise ConfigError(f"{origin}: {key}.min_severity: expected 0 (informational) to 4 (critical)")
    if not 0 <= config.watchlist.min_confidence <= 100:
        raise ConfigError(f"{origin}: watchlist.min_confidence: expected 0 to 100")
    if config.detect.batch < 1 or config.syslog.batch < 1:
        raise ConfigError(f"{origin}: batch: expected a positive number of events")
    return config


def load_config(path: Path | None) -> AgentConfig:
    """The file's configuration; None → the defaults (no sources: an agent that only serves and listens)."""
    if path is None:
        return parse_config(tomllib.loads(DEFAULT_CONFIG), "defaults", Path.cwd())
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror}") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    return parse_config(data, str(path), path.resolve().parent)
