"""The aggregation strategies: Flower's FedAvg, a coordinate-wise trimmed mean (Yin et al. 2018; Flower's
FedTrimmedAvg aggregation) with server momentum, and Flower's Krum / multi-Krum (Blanchard et al. 2017),
wrapped in the update screen and, on request, in Flower's central-DP wrapper. They are factories in the
`STRATEGIES` registry (`plugins.Registry`, entry-point group `healthswarm.strategies`), so another
package can add one.

Order of the wrappers, outermost first: screen → DP → aggregation. The screen must come first so the
DP wrapper never clips an update of the wrong shape; DP is offered with FedAvg only, because its noise
is calibrated to a mean (a trimmed mean or Krum's choice has another sensitivity).

Why the trimmed mean carries server momentum. On label-skewed (non-IID) organisations the largest moves
of a coordinate come from the organisations that hold a class the others barely see; the trim drops
exactly those, so every round's trimmed step is shorter than the mean step, and the model converges
more slowly: measured on CIC-IDS2017 (bench/federated.py, 10 organisations, Dirichlet(0.5), 40 rounds)
Flower's plain FedTrimmedAvg was still climbing at round 40 and ended 2.5-3.3 points below the
centralised model (seeds 0-2). In one seed, a smaller trim (β = 0.1, which no longer covers 2 attackers
of 10) gained nothing and weighting the kept values by row counts half a point; a longer server step
gained most (1.4-2.2 points over the three seeds): server momentum (FedAvgM, Hsu, Qi & Brown 2019),
v ← μ·v + Δ and global ← global + v, on the trimmed update Δ, μ = 0.5. Robustness is unchanged in kind:
with at most β·n attackers every kept value of a coordinate lies within the honest organisations' range,
so Δ does too, and v is a geometric sum of such Δ: the attackers' pull on a round is bounded as before,
scaled by at most 1/(1 − μ) = 2.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from flwr.common import FitIns, FitRes, Parameters, Scalar, ndarrays_to_parameters, parameters_to_ndarrays
from flwr.server.client_manager import ClientManager
from flwr.server.client_proxy import ClientProxy
from flwr.server.strategy import FedAvg, FedTrimmedAvg, Krum, Strategy
from flwr.server.strategy.aggregate import aggregate_trimmed_avg

from healthswarm.plugins import Registry
from healthswarm.swarm.federated.dp import DPSettings, wrap
from healthswarm.swarm.federated.model import NDArrays
from healthswarm.swarm.federated.screen import ScreenedStrategy

StrategyName = str  # a name in STRATEGIES
EvaluateFn = Callable[[int, NDArrays, dict], tuple[float, dict] | None]


@dataclass(frozen=True)
class StrategyOptions:
    clients: int            # organisations, every one of which trains every round
    trim_beta: float = 0.2  # trimmed-mean: share cut at each end of every coordinate
    krum_malicious: int = 0  # krum: attackers assumed
    server_momentum: float = 0.5  # trimmed-mean: μ of the server's momentum; 0 = Flower's FedTrimmedAvg


# A strategy factory: Flower's common strategy arguments (fractions, minimum clients, evaluate_fn,
# initial parameters) and the options → the Flower strategy that aggregates.
StrategyFactory = Callable[[dict[str, Any], StrategyOptions], Strategy]

STRATEGIES: Registry[StrategyFactory] = Registry("strategy", "healthswarm.strategies", {
    "fedavg": "healthswarm.swarm.federated.strategies:fedavg",
    "trimmed-mean": "healthswarm.swarm.federated.strategies:trimmed_mean",
    "krum": "healthswarm.swarm.federated.strategies:krum",
}, expect=Callable)


def register_strategy(name: str) -> Callable[[StrategyFactory], StrategyFactory]:
    """Decorator: `factory(common, options)` returns the Flower strategy called `name`."""
    return STRATEGIES.register(name=name)


def fedavg(common: dict[str, Any], options: StrategyOptions) -> Strategy:
    return FedAvg(**common)


class TrimmedMeanMomentum(FedTrimmedAvg):
    """Flower's coordinate-wise trimmed mean of the organisations' models, applied as a step with server
    momentum: Δ = trimmed mean − the global model sent this round, v ← μ·v + Δ, new global = global + v.
    With μ = 0 this is FedTrimmedAvg exactly (the mean of shifted values is the shifted mean)."""

    def __init__(self, *, beta: float, momentum: float, **common: Any) -> None:
        if not 0 <= momentum < 1:
            raise ValueError(f"server momentum {momentum}: expected a value in [0, 1)")
        super().__init__(beta=beta, **common)
        self.momentum = momentum
        self.sent: NDArrays | None = None  # the global model of the round being aggregated
        self.velocity: NDArrays | None = None

    def configure_fit(self, server_round: int, parameters: Parameters, client_manager: ClientManager
                      ) -> list[tuple[ClientProxy, FitIns]]:
        self.sent = parameters_to_ndarrays(parameters)
        return super().configure_fit(server_round, parameters, client_manager)

    def aggregate_fit(self, server_round: int, results: list[tuple[ClientProxy, FitRes]],
                      failures: list[tuple[ClientProxy, FitRes] | BaseException]
                      ) -> tuple[Parameters | None, dict[str, Scalar]]:
        if not results or self.sent is None:
            return None, {}
        trimmed = aggregate_trimmed_avg([(parameters_to_ndarrays(res.parameters), res.num_examples)
                                         for _, res in results], self.beta)
        step = [t - g for t, g in zip(trimmed, self.sent, strict=True)]
        self.velocity = step if self.velocity is None else [
            self.momentum * v + d for v, d in zip(self.velocity, step, strict=True)]
        updated = [g + v for g, v in zip(self.sent, self.velocity, strict=True)]
        return ndarrays_to_parameters([np.asarray(u) for u in updated]), {}


def trimmed_mean(common: dict[str, Any], options: StrategyOptions) -> Strategy:
    return TrimmedMeanMomentum(beta=options.trim_beta, momentum=options.server_momentum, **common)


def krum(common: dict[str, Any], options: StrategyOptions) -> Strategy:
    # multi-Krum: keep the n − f updates Krum scores best and average them (f = assumed attackers)
    return Krum(num_malicious_clients=options.krum_malicious,
                num_clients_to_keep=max(1, options.clients - options.krum_malicious), **common)


def build(name: StrategyName, initial: NDArrays, clients: int, evaluate_fn: EvaluateFn | None = None,
          trim_beta: float = 0.2, krum_malicious: int = 0, dp: DPSettings | None = None,
          server_momentum: float = 0.5) -> ScreenedStrategy:
    """A screened Flower strategy in which every one of `clients` organisations trains every round."""
    if name not in STRATEGIES:
        raise ValueError(f"unknown strategy {name!r}; expected one of {', '.join(STRATEGIES)}")
    if dp is not None and name != "fedavg":
        raise ValueError("differential privacy is calibrated for fedavg only")
    common = {"fraction_fit": 1.0, "fraction_evaluate": 0.0, "min_fit_clients": clients,
              "min_evaluate_clients": 0, "min_available_clients": clients, "evaluate_fn": evaluate_fn,
              "on_fit_config_fn": lambda r: {"server_round": r},
              "initial_parameters": ndarrays_to_parameters(initial)}
    inner = STRATEGIES.get(name)(common, StrategyOptions(clients, trim_beta, krum_malicious,
                                                                         server_momentum))
    if dp is not None:
        inner = wrap(inner, dp, clients)
    return ScreenedStrategy(inner, [tuple(p.shape) for p in initial], uniform=dp is not None)
