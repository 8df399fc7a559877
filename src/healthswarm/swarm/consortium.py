"""Set up a local consortium: one workspace per organisation, keys, everyone trusting everyone, node.toml files."""

from __future__ import annotations

import socket
from pathlib import Path

from healthswarm.share.signing import TrustStore, load_or_create_keys


def free_ports(n: int) -> list[int]:
    """n distinct free TCP ports on 127.0.0.1 (bound and released; the OS does not hand them out again soon)."""
    sockets = []
    try:
        for _ in range(n):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind(("127.0.0.1", 0))
            sockets.append(s)
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def make_consortium(base: Path, names: list[str], ports: list[int], seeds: int = 1,
                    params: dict[str, float] | None = None) -> list[Path]:
    """`<base>/<name>/` workspaces and `<base>/<name>.toml` configs; the first `seeds` nodes are the seeds."""
    workspaces = [base / name for name in names]
    keys = [load_or_create_keys(ws) for ws in workspaces]
    for ws in workspaces:
        store = TrustStore.in_workspace(ws)
        for name, pair in zip(names, keys, strict=True):
            store.trust(name, pair.public_text, group="consortium")
    seed_addrs = [f"127.0.0.1:{p}" for p in ports[:seeds]]
    configs = []
    for name, port in zip(names, ports, strict=True):
        lines = [f'workspace = "{name}"', f'name = "{name}"', f'listen = "127.0.0.1:{port}"',
                 "seeds = [" + ", ".join(f'"{s}"' for s in seed_addrs if not s.endswith(f":{port}")) + "]"]
        if params:
            lines.append("[params]")
            lines += [f"{k} = {v}" for k, v in params.items()]
        path = base / f"{name}.toml"
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
        configs.append(path)
    return configs
