"""Peer reputation: a beta reputation per peer from intelligence later confirmed or refuted.

With r confirmations and s refutations, the expected probability that the peer's next report is
right is (r + 1) / (r + s + 2) (Jøsang and Ismail, "The Beta Reputation System", 2002): 0.5 for a
peer we know nothing about, rising with confirmed reports and falling with refuted ones. Older
evidence fades with a forgetting factor per update (default 0.98) so a peer can recover. The
score weights the confidence of what the peer sends: received confidence × score × 2, capped at
100 (so an unknown peer's 80 stays 80, a peer at 0.25 brings 40).
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

REPUTATION_FILE = "reputation.json"
FORGET = 0.98


@dataclass
class Reputation:
    key_id: str
    confirmed: float = 0.0
    refuted: float = 0.0
    updated: str = ""

    @property
    def score(self) -> float:
        return (self.confirmed + 1.0) / (self.confirmed + self.refuted + 2.0)

    def weigh(self, confidence: int) -> int:
        return max(0, min(100, round(confidence * self.score * 2)))


class ReputationStore:
    def __init__(self, path: Path) -> None:
        self.path = path

    @classmethod
    def in_workspace(cls, workspace: Path) -> ReputationStore:
        return cls(workspace / REPUTATION_FILE)

    def _read(self) -> dict[str, dict[str, object]]:
        if not self.path.exists():
            return {}
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise ValueError(f"{self.path}: not valid JSON: {exc}") from exc
        if not isinstance(data, dict):
            raise ValueError(f"{self.path}: expected an object keyed by peer key id")
        return data

    def get(self, key_id: str) -> Reputation:
        entry = self._read().get(key_id)
        if not entry:
            return Reputation(key_id)
        return Reputation(key_id, float(entry.get("confirmed", 0)), float(entry.get("refuted", 0)),  # type: ignore[arg-type]
                          str(entry.get("updated", "")))

    def all(self) -> list[Reputation]:
        return [self.get(k) for k in sorted(self._read())]

    def record(self, key_id: str, confirmed: int = 0, refuted: int = 0, forget: float = FORGET) -> Reputation:
        """Add evidence (after fading the old by `forget`) and save."""
        if confirmed < 0 or refuted < 0:
            raise ValueError("evidence counts must not be negative")
        current = self.get(key_id)
        updated = Reputation(key_id, current.confirmed * forget + confirmed, current.refuted * forget + refuted,
                             datetime.now(UTC).isoformat(timespec="seconds"))
        data = self._read()
        data[key_id] = {k: v for k, v in asdict(updated).items() if k != "key_id"}
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n", encoding="utf-8")
        os.replace(tmp, self.path)
        return updated
