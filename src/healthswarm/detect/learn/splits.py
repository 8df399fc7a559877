"""Train/test splits: stratified at random, and by time range per class (no test row of a class lies
inside or before the time range that class was trained on).

Hosts cannot be kept apart on CIC-IDS2017: every attack class except Botnet and Infiltration comes
from one attacker address (172.16.0.1, the NAT of the attack network), so a host-disjoint split would
put whole classes on one side. The time-range split is the grouped split we report.
"""

from __future__ import annotations

import numpy as np


def stratified(labels: np.ndarray, test: float = 0.3, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Per class, a random `test` share goes to test (at least one row when the class has two or more)."""
    rng = np.random.default_rng(seed)
    train, held = [], []
    for label in sorted(set(labels)):
        idx = rng.permutation(np.flatnonzero(labels == label))
        n = max(round(len(idx) * test), 1) if len(idx) > 1 else 0
        held.append(idx[:n])
        train.append(idx[n:])
    return np.sort(np.concatenate(train)), np.sort(np.concatenate(held))


def by_time(labels: np.ndarray, times: np.ndarray, test: float = 0.3) -> tuple[np.ndarray, np.ndarray]:
    """Per class, the latest `test` share of its time range is held out; ties at the cut stay together
    (on the test side), so train and test time ranges of a class do not overlap."""
    if len(times) != len(labels) or not np.isfinite(times).all():
        raise ValueError("a time split needs a finite time for every row")
    train, held = [], []
    for label in sorted(set(labels)):
        idx = np.flatnonzero(labels == label)
        idx = idx[np.argsort(times[idx], kind="stable")]
        if len(idx) < 2:
            train.append(idx)
            continue
        cut = times[idx[min(len(idx) - 1, int(len(idx) * (1 - test)))]]
        late = times[idx] >= cut
        if late.all():  # one timestamp for the whole class: keep it for training
            train.append(idx)
            continue
        held.append(idx[late])
        train.append(idx[~late])
    return np.sort(np.concatenate(train)), np.sort(np.concatenate(held) if held else np.empty(0, dtype=np.int64))
