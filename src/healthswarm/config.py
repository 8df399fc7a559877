"""One Settings object: defaults, overridden by `<workspace>/config.toml`, then by `HEALTHSWARM_*`
variables, then by command-line options.

The workspace is one folder that holds the SQLite database, keys, checkpoints, models and reports.
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from healthswarm.errors import ConfigError

ENV_PREFIX = "HEALTHSWARM_"
DEFAULT_WORKSPACE = Path(".healthswarm")
CONFIG_FILE = "config.toml"


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
        known = {f.name for f in dataclasses.fields(cls)} - {"workspace", "extra"}
        for name in known:
            env_value = os.environ.get(ENV_PREFIX + name.upper())
            if env_value is not None:
                values[name] = env_value
        values.update({k: v for k, v in overrides.items() if v is not None})
        unknown = {k: values.pop(k) for k in list(values) if k not in known}
        for name, value in values.items():
            if not isinstance(value, str):
                raise ConfigError(f"{config_path}: {name}: expected a string, got {type(value).__name__}")
        return cls(workspace=ws, extra=unknown, **values)

    def ensure_workspace(self) -> Path:
        self.workspace.mkdir(parents=True, exist_ok=True)
        return self.workspace
