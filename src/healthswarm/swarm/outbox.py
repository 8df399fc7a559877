"""Items to publish, handed to a running node as files in `<workspace>/swarm/outbox/` (picked up each round)."""

from __future__ import annotations

import json
import os
import secrets
from pathlib import Path
from typing import Any

OUTBOX = "outbox"


def post(folder: Path, kind: str, data: dict[str, Any]) -> Path:
    box = folder / OUTBOX
    box.mkdir(parents=True, exist_ok=True)
    name = f"{secrets.token_hex(8)}.json"
    tmp = box / f".{name}.tmp"
    tmp.write_text(json.dumps({"kind": kind, "data": data}), encoding="utf-8")
    os.replace(tmp, box / name)   # atomic: the node never reads half a request
    return box / name


def take(folder: Path) -> list[tuple[str, dict[str, Any]]]:
    box = folder / OUTBOX
    if not box.is_dir():
        return []
    out = []
    for path in sorted(box.glob("*.json")):
        try:
            request = json.loads(path.read_text(encoding="utf-8"))
            out.append((str(request["kind"]), dict(request["data"])))
        except (OSError, ValueError, KeyError, TypeError):
            pass
        path.unlink(missing_ok=True)
    return out
