"""One Settings object: defaults, overridden by `<workspace>/config.toml`, then by `HEALTHSWARM_*`
variables, then by command-line options.

The workspace is one folder that holds the SQLite database, keys, checkpoints, models and reports.
"""

from __future__ import annotations

import contextlib
import dataclasses
import ipaddress
import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from healthswarm.errors import ConfigError

ENV_PREFIX = "HEALTHSWARM_"
DEFAULT_WORKSPACE = Path(".healthswarm")
CONFIG_FILE = "config.toml"
_TRUE, _FALSE = {"1", "true", "yes", "on"}, {"0", "false", "no", "off", ""}


@dataclass(frozen=True)
class TlsSettings:
    """`[tls]` / `HEALTHSWARM_TLS_<NAME>`: PEM paths for the API, TAXII and node traffic; no cert means plain."""

    cert: str = ""  # this agent's certificate (chain), presented as server and, for mutual TLS, as client
    key: str = ""  # its private key (unencrypted PEM; protect it with file permissions)
    ca: str = ""  # the CA (bundle) peers' certificates must chain to; empty: the system's trust store
    mutual: bool = True  # node traffic: also require the connecting node's certificate (consortium CA)
    min_version: str = "1.2"  # "1.2" or "1.3"

    @property
    def enabled(self) -> bool:
        return bool(self.cert or self.key)


@dataclass(frozen=True)
class RateLimits:
    """`[rate_limit]` / `HEALTHSWARM_RATE_LIMIT_<NAME>`: token buckets per client IP address."""

    enabled: bool = True
    auth_failures: int = 10  # failed authentications (401) allowed in a burst …
    auth_window: float = 60.0  # … refilled evenly over this many seconds
    public_requests: int = 120  # requests without credentials (health, discovery, docs, dashboard files) …
    public_window: float = 60.0


@dataclass(frozen=True)
class IngestLimits:
    """`[ingest]` / `HEALTHSWARM_INGEST_<NAME>`: bounds on what one input may cost (decompression bombs,
    runaway records). An input over a bound is quarantined with the reason, the rest of it unread."""

    max_total_bytes: int = 1 << 30  # bytes decompressed from one input (every layer of its containers)
    max_ratio: float = 100.0  # decompressed bytes per compressed byte read, checked …
    ratio_grace_bytes: int = 4 << 20  # … once this many bytes were decompressed
    max_record_bytes: int = 16 << 20  # the longest line or record a format holds; longer ones are rejected


@dataclass(frozen=True)
class ApiSettings:
    """`[api]` / `HEALTHSWARM_API_<NAME>`: what the HTTP faces (`serve`: the API, the dashboard, TAXII) accept."""

    max_body_bytes: int = 1 << 20  # a larger request body is refused with 413 (TAXII keeps its own, larger cap)
    # reverse proxies (addresses or CIDR networks) whose X-Forwarded-For names the client; empty: no proxy is
    # believed and every client is the address that connected (rate limits are per that address)
    trusted_proxies: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        for entry in self.trusted_proxies:
            try:
                ipaddress.ip_network(entry, strict=False)
            except ValueError:
                raise ConfigError(f"api.trusted_proxies: {entry!r} is not an IP address or network") from None


@dataclass(frozen=True)
class Settings:
    """Everything configurable. Field names are the TOML keys; `HEALTHSWARM_<NAME>` overrides."""

    workspace: Path = DEFAULT_WORKSPACE
    # SQLAlchemy URL; empty means the embedded SQLite database inside the workspace.
    db: str = ""
    # "memory" (in-process, the embedded default) or a nats:// URL for JetStream.
    bus: str = "memory"
    mqtt: str = "mqtt://127.0.0.1:1883"
    # The organisation this agent belongs to (an `organisations[].id` of the inventory).
    organisation: str = ""
    tls: TlsSettings = field(default_factory=TlsSettings)
    rate_limit: RateLimits = field(default_factory=RateLimits)
    api: ApiSettings = field(default_factory=ApiSettings)
    ingest: IngestLimits = field(default_factory=IngestLimits)
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def db_url(self) -> str:
        if self.db:
            return self.db
        return f"sqlite:///{(self.workspace / 'healthswarm.db').resolve()}"

    @classmethod
    def load(cls, workspace: Path | None = None, **overrides: Any) -> Settings:
        """Resolve the settings: defaults < config.toml < environment < explicit overrides."""
        env_home = os.environ.get(f"{ENV_PREFIX}HOME")
        ws = Path(workspace or env_home or DEFAULT_WORKSPACE)
        values: dict[str, Any] = {}
        config_path = ws / CONFIG_FILE
        if config_path.exists():
            try:
                values.update(tomllib.loads(config_path.read_text(encoding="utf-8")))
            except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
                raise ConfigError(f"{config_path}: not valid TOML: {exc}") from exc
        sections = {"tls": _section(TlsSettings, "tls", values.pop("tls", {}), config_path),
                    "api": _section(ApiSettings, "api", values.pop("api", {}), config_path),
                    "rate_limit": _section(RateLimits, "rate_limit", values.pop("rate_limit", {}), config_path),
                    "ingest": _section(IngestLimits, "ingest", values.pop("ingest", {}), config_path)}
        known = {f.name for f in dataclasses.fields(cls)} - {"workspace", "extra", *sections}
        for name in known:
            env_value = os.environ.get(ENV_PREFIX + name.upper())
            if env_value is not None:
                values[name] = env_value
        values.update({k: v for k, v in overrides.items() if v is not None})
        unknown = {k: values.pop(k) for k in list(values) if k not in known}
        for name, value in values.items():
            if not isinstance(value, str):
                raise ConfigError(f"{config_path}: {name}: expected a string, got {type(value).__name__}")
        return cls(workspace=ws, extra=unknown, **sections, **values)

    def ensure_workspace(self) -> Path:
        self.workspace.mkdir(parents=True, exist_ok=True)
        return self.workspace


def _section(kind: type[Any], name: str, table: Any, config_path: Path) -> Any:
    """One `[name]` table of config.toml, each key overridden by `HEALTHSWARM_<NAME>_<KEY>`, typed like its default."""
    if not isinstance(table, dict):
        raise ConfigError(f"{config_path}: {name}: expected a table [{name}]")
    allowed = {f.name: f.default for f in dataclasses.fields(kind)}
    unknown = sorted(set(table) - set(allowed))
    if unknown:
        raise ConfigError(f"{config_path}: {name}.{unknown[0]}: unknown key (expected one of {', '.join(allowed)})")
    values: dict[str, Any] = {}
    for key, default in allowed.items():
        env_name = f"{ENV_PREFIX}{name.upper()}_{key.upper()}"
        if env_name in os.environ:
            values[key] = _typed(os.environ[env_name], default, env_name)
        elif key in table:
            values[key] = _typed(table[key], default, f"{config_path}: {name}.{key}")
    return kind(**values)


def _typed(value: Any, default: Any, where: str) -> Any:
    """`value` (a TOML value or an environment string) as the type of `default`, or a ConfigError saying where."""
    wanted = type(default)
    result: Any = None
    if wanted is tuple:  # a list of strings: a TOML array, or comma-separated in an environment variable
        items = value.split(",") if isinstance(value, str) else value
        if isinstance(items, list | tuple) and all(isinstance(item, str) for item in items):
            return tuple(item.strip() for item in items if item.strip())
        raise ConfigError(f"{where}: expected a list of strings, got {value!r}")
    if isinstance(value, str) and wanted is bool:
        text = value.strip().lower()
        result = (text in _TRUE) if text in _TRUE | _FALSE else None
    elif isinstance(value, str) and wanted in (int, float):
        with contextlib.suppress(ValueError):
            result = wanted(value.strip())
    elif isinstance(value, bool) != (wanted is bool):
        result = None  # TOML's true is an int to Python; a flag and a number are not interchangeable
    elif isinstance(value, wanted) or (wanted is float and isinstance(value, int)):
        result = wanted(value)
    if result is None or (wanted in (int, float) and result <= 0):
        positive = " > 0" if wanted in (int, float) else ""
        raise ConfigError(f"{where}: expected {wanted.__name__}{positive}, got {value!r}")
    return result
