"""node.toml: which workspace, name, listen address, seeds and protocol parameters a node runs with.

    workspace = "/var/lib/healthswarm/st-aurelia"   # relative paths are relative to the file
    name = "st-aurelia"                              # the organisation
    listen = "127.0.0.1:7401"
    seeds = ["127.0.0.1:7402"]
    trust = "trust.json"                             # default: <workspace>/trust.json
    [params]                                         # any field of swarm.params.Params
    period = 0.5
"""

from __future__ import annotations

import dataclasses
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from healthswarm.errors import ConfigError
from healthswarm.swarm.params import Params


@dataclass(frozen=True)
class NodeConfig:
    workspace: Path
    name: str
    listen: str = "127.0.0.1:7400"
    seeds: list[str] = field(default_factory=list)
    trust: Path | None = None
    params: Params = field(default_factory=Params)

    @property
    def host_port(self) -> tuple[str, int]:
        host, _, port = self.listen.rpartition(":")
        return host, int(port)

    @property
    def trust_path(self) -> Path:
        return self.trust or self.workspace / "trust.json"

    @property
    def folder(self) -> Path:
        return self.workspace / "swarm"


def _address(path: Path, name: str, value: Any) -> str:
    host, sep, port = str(value).rpartition(":")
    if not isinstance(value, str) or not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ConfigError(f"{path}: {name} {value!r}: expected host:port")
    return value


def load_node_config(path: Path) -> NodeConfig:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from exc
    known = {"workspace", "name", "listen", "seeds", "trust", "params"}
    if unknown := set(data) - known:
        raise ConfigError(f"{path}: unknown keys {', '.join(sorted(unknown))} (expected {', '.join(sorted(known))})")
    if not isinstance(data.get("workspace"), str) or not isinstance(data.get("name"), str) or not data["name"]:
        raise ConfigError(f"{path}: workspace and name are required strings")
    base = path.parent
    seeds = data.get("seeds", [])
    if not isinstance(seeds, list):
        raise ConfigError(f"{path}: seeds: expected a list of host:port")
    raw_params = data.get("params", {})
    names = {f.name: f.type for f in dataclasses.fields(Params)}
    if not isinstance(raw_params, dict) or (bad := set(raw_params) - set(names)):
        raise ConfigError(f"{path}: [params]: unknown {', '.join(sorted(bad)) if raw_params else 'table'}")
    try:
        params = Params(**{k: (float(v) if names[k] == "float" else int(v)) for k, v in raw_params.items()})
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{path}: [params]: {exc}") from exc
    return NodeConfig(
        workspace=(base / data["workspace"]).resolve(), name=data["name"],
        listen=_address(path, "listen", data.get("listen", "127.0.0.1:7400")),
        seeds=[_address(path, "seed", s) for s in seeds],
        trust=(base / data["trust"]).resolve() if isinstance(data.get("trust"), str) else None,
        params=params,
    )
