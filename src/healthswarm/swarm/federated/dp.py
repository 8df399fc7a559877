"""Differential privacy for the federation: Flower's central-DP wrapper, and the ε it spends.

Mechanism: Flower's `DifferentialPrivacyServerSideFixedClipping` (works in flwr 1.42). Each round
the server clips every organisation's update to L2 norm C, averages them uniformly (see
`ScreenedStrategy(uniform=True)`) and adds Gaussian noise of standard deviation z·C/m to the average,
m the number of organisations sampled. The unit of privacy is the organisation (client-level DP,
McMahan et al. 2018, add/remove-one adjacency): the mean of m clipped updates moves by at most C/m
when one organisation's whole data set is added or removed, so each round is a Gaussian mechanism of
noise multiplier z. The server sees the unclipped updates: this protects the released model from
everyone who receives or queries it, not the organisations from the server.

Accountant: Rényi DP (Mironov 2017), written here from the standard formulas (no extra dependency):
a Gaussian mechanism of multiplier z is (α, α/(2z²))-RDP for every order α > 1; rounds compose by
adding their RDP; (α, ρ)-RDP converts to (ε, δ)-DP with
ε = ρ + log((α−1)/α) − (log δ + log α)/(α−1) (Canonne, Kamath & Steinke 2020, Prop. 12; tighter than
the classic ρ + log(1/δ)/(α−1)), minimised over a grid of orders. Every organisation takes part in
every round, so no amplification by subsampling is claimed: the figure is an upper bound.
When the screen refuses updates, fewer organisations (k < m) share the noise: that round's effective
multiplier is z·k/m, and the accountant is told so.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from flwr.server.strategy import DifferentialPrivacyServerSideFixedClipping, Strategy

ORDERS = np.concatenate([np.linspace(1.01, 10, 200), np.arange(11, 257, dtype=np.float64)])


@dataclass(frozen=True, slots=True)
class DPSettings:
    noise_multiplier: float
    clipping_norm: float
    delta: float = 1e-5

    def __post_init__(self) -> None:
        if self.noise_multiplier <= 0 or self.clipping_norm <= 0 or not 0 < self.delta < 1:
            raise ValueError("DP needs noise multiplier > 0, clipping norm > 0 and 0 < delta < 1")


def wrap(strategy: Strategy, dp: DPSettings, sampled_clients: int) -> Strategy:
    return DifferentialPrivacyServerSideFixedClipping(strategy, dp.noise_multiplier, dp.clipping_norm,
                                                      sampled_clients)


def epsilon(multipliers: Sequence[float], delta: float) -> float:
    """(ε, δ)-DP after Gaussian rounds with these (effective) noise multipliers; inf if any is 0."""
    if not multipliers:
        return 0.0
    if min(multipliers) <= 0:
        return math.inf
    rdp = ORDERS * sum(1.0 / (2.0 * z * z) for z in multipliers)
    eps = rdp + np.log((ORDERS - 1) / ORDERS) - (math.log(delta) + np.log(ORDERS)) / (ORDERS - 1)
    return float(max(0.0, eps.min()))


def epsilon_per_round(noise_multiplier: float, accepted: Sequence[int], sampled: int, delta: float) -> list[float]:
    """ε spent after each round, given how many updates each round averaged."""
    effective = [noise_multiplier * k / sampled for k in accepted]
    return [epsilon(effective[: r + 1], delta) for r in range(len(effective))]
