"""A node's accepted items in `<workspace>/swarm/items.jsonl`, so a restart keeps what it knew."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

ITEMS = "items.jsonl"


class ItemLog:
    def __init__(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self.path = folder / ITEMS

    def load(self) -> list[dict[str, Any]]:
        if not self.path.exists():
            return []
        out = []
        for line in self.path.read_text(encoding="utf-8").splitlines():
            try:
                out.append(json.loads(line))
            except ValueError:
                continue   # a line cut short by a crash
        return out

    def append(self, raw: dict[str, Any]) -> None:
        with open(self.path, "a", encoding="utf-8") as out:
            out.write(json.dumps(raw, separators=(",", ":")) + "\n")
