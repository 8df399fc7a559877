"""Poisoned organisations, to measure what a strategy withstands.

* `label-flip`: the attacker trains on its own rows with every attack relabelled as the benign class
  (a targeted attack: the shared model should stop seeing attacks).
* `scaled`: the same flipped training, then model replacement (Bagdasaryan et al. 2020): the update
  sent is the global model plus `boost` × its change, so that after averaging with n honest updates
  the poisoned direction survives at full strength. Plain FedAvg has no defence against it; a
  coordinate-wise trimmed mean discards the extreme values, Krum the outlying updates.

The attacker is a client like any other: it sends parameters only, and reports its true row count.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

from healthswarm.swarm.federated.model import NDArrays

AttackKind = Literal["label-flip", "scaled"]
ATTACKS: tuple[AttackKind, ...] = ("label-flip", "scaled")


@dataclass(frozen=True, slots=True)
class Attack:
    kind: AttackKind
    benign: int  # class index every attack row is relabelled to
    boost: float = 10.0

    def __post_init__(self) -> None:
        if self.kind not in ATTACKS:
            raise ValueError(f"unknown attack {self.kind!r}; expected one of {', '.join(ATTACKS)}")
        if self.boost <= 0:
            raise ValueError("the boost of a scaled update must be positive")

    def labels(self, y: np.ndarray) -> np.ndarray:
        return np.full_like(y, self.benign)

    def update(self, global_params: NDArrays, trained: NDArrays) -> NDArrays:
        if self.kind == "label-flip":
            return trained
        return [g + self.boost * (t - g) for g, t in zip(global_params, trained, strict=True)]


def poisoned_clients(clients: int, share: float, seed: int) -> set[int]:
    """Which organisations are attackers: round(share × clients) of them, drawn at random."""
    if not 0 <= share < 1:
        raise ValueError("the poisoned share must be in [0, 1)")
    count = round(share * clients)
    return {int(i) for i in np.random.default_rng(seed + 7).choice(clients, size=count, replace=False)}
