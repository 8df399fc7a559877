"""Split training rows into per-organisation partitions, non-IID as real organisations are.

Two skews, both standard in the federated-learning literature:

* **label skew** (`dirichlet`): for every class, its rows are shared among the organisations in
  proportions drawn from Dirichlet(α) (Hsu, Qi & Brown 2019). Small α (0.1) gives organisations that
  saw only one or two attack kinds; large α (100) is nearly IID. This is the skew that matters on
  CIC-IDS2017, whose attacks nearly all come from one NAT address, so a split by source host would put
  whole classes in one organisation (see `detect/learn/splits.py`).
* **host/device skew** (`by_group`): whole groups (a source host, a TON_IoT device) go to one
  organisation, round-robin over the groups in order of size, largest first.

Every training row lands in exactly one partition (disjoint, covering). An empty partition is an
error, not a client that silently trains on nothing.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from healthswarm.errors import InputError, Location, Problem
from healthswarm.model.words import counted


@dataclass(frozen=True, slots=True)
class Partitioning:
    """Row indices (into the training rows) of each organisation, and how they were drawn."""

    parts: list[np.ndarray]
    method: str

    def __post_init__(self) -> None:
        empty = [i for i, p in enumerate(self.parts) if len(p) == 0]
        if empty:
            which = ", ".join(map(str, empty))
            raise InputError(Problem(Location("<partition>"),
                                     f"{counted(len(empty), 'organisation')} received no rows: {which}",
                                     "fewer organisations, more rows, or a larger Dirichlet alpha"))

    def summary(self, labels: np.ndarray) -> list[dict[str, int]]:
        """Rows per class in each partition (what the report shows as the skew)."""
        return [{str(k): int(v) for k, v in zip(*np.unique(labels[p], return_counts=True), strict=True)}
                for p in self.parts]


def dirichlet(labels: np.ndarray, clients: int, alpha: float, seed: int = 0, min_rows: int = 10,
              attempts: int = 100) -> Partitioning:
    """Label-skewed partitions of len(labels) rows; redrawn (up to `attempts` times) until every
    organisation holds at least `min_rows` rows, as Hsu et al. do."""
    if clients < 1 or alpha <= 0:
        raise InputError(Problem(Location("<partition>"), f"{clients} organisations, alpha {alpha}",
                                 "at least one organisation and alpha > 0"))
    if len(labels) < clients * min_rows:
        raise InputError(Problem(Location("<partition>"), f"{len(labels)} rows for {clients} organisations",
                                 f"at least {min_rows} rows per organisation"))
    rng = np.random.default_rng(seed)
    for _ in range(attempts):
        buckets: list[list[np.ndarray]] = [[] for _ in range(clients)]
        for label in sorted(set(labels)):
            idx = rng.permutation(np.flatnonzero(labels == label))
            shares = rng.dirichlet(np.full(clients, alpha))
            cuts = (np.cumsum(shares)[:-1] * len(idx)).astype(np.int64)
            for k, chunk in enumerate(np.split(idx, cuts)):
                buckets[k].append(chunk)
        parts = [np.sort(np.concatenate(b)) for b in buckets]
        if min(len(p) for p in parts) >= min_rows:
            return Partitioning(parts, f"dirichlet(alpha={alpha:g}, seed={seed})")
    raise InputError(Problem(Location("<partition>"), f"no draw in {attempts} gave every organisation "
                             f"{min_rows} rows", "a larger alpha or fewer organisations"))


def by_group(groups: np.ndarray, clients: int) -> Partitioning:
    """Whole groups (hosts, devices) per organisation: largest group first, round-robin."""
    names, counts = np.unique(groups.astype(str), return_counts=True)
    if len(names) < clients:
        raise InputError(Problem(Location("<partition>"), f"{len(names)} groups for {clients} organisations",
                                 "at least one group (host or device) per organisation"))
    order = names[np.argsort(-counts, kind="stable")]
    owner = {name: k % clients for k, name in enumerate(order)}
    assigned = np.asarray([owner[g] for g in groups.astype(str)])
    return Partitioning([np.flatnonzero(assigned == k) for k in range(clients)], "by-group")
