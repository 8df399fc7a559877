"""How much a peer's reports weigh: the beta reputation of share/reputation.py, with a consortium prior.

weight = max(0, 2·score − 1), score = (confirmed + prior + 1) / (confirmed + prior + refuted + 2): a
trust-store peer with no history weighs 0.5 (prior 2), every refutation from our own data lowers
it (two refutations bring it to 0), confirmations raise it towards 1. `MemoryTrust` keeps the
evidence in memory (simulation); `WorkspaceTrust` in the workspace's reputation.json, read once.
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

from healthswarm.share.reputation import Reputation, ReputationStore


class Trust(Protocol):
    def weight(self, key_id: str) -> float: ...

    def confirm(self, key_id: str) -> None: ...

    def refute(self, key_id: str) -> None: ...


def weight_of(rep: Reputation, prior: float) -> float:
    score = Reputation(rep.key_id, rep.confirmed + prior, rep.refuted).score
    return max(0.0, 2 * score - 1)


class MemoryTrust:
    def __init__(self, prior: float = 2.0) -> None:
        self.prior = prior
        self.evidence: dict[str, Reputation] = {}

    def _rep(self, key_id: str) -> Reputation:
        return self.evidence.setdefault(key_id, Reputation(key_id))

    def weight(self, key_id: str) -> float:
        return weight_of(self._rep(key_id), self.prior)

    def confirm(self, key_id: str) -> None:
        self._rep(key_id).confirmed += 1

    def refute(self, key_id: str) -> None:
        self._rep(key_id).refuted += 1


class WorkspaceTrust(MemoryTrust):
    """Evidence persisted through ReputationStore; weights cached in memory between updates."""

    def __init__(self, workspace: Path, prior: float = 2.0) -> None:
        super().__init__(prior)
        self.store = ReputationStore.in_workspace(workspace)
        self.evidence = {r.key_id: r for r in self.store.all()}

    def confirm(self, key_id: str) -> None:
        self.evidence[key_id] = self.store.record(key_id, confirmed=1)

    def refute(self, key_id: str) -> None:
        self.evidence[key_id] = self.store.record(key_id, refuted=1)
