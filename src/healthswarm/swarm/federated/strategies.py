"""The aggregation strategies, all Flower's own: FedAvg, FedTrimmedAvg (coordinate-wise trimmed mean,
Yin et al. 2018) and Krum / multi-Krum (Blanchard et al. 2017), wrapped in the update screen and,
on request, in Flower's central-DP wrapper. They are factories in the `STRATEGIES` registry
(`plugins.Registry`, entry-point group `healthswarm.strategies`), so another package can add one.

Order of the wrappers, outermost first: screen → DP → aggregation. The screen must come first so the
DP wrapper never clips an update of the wrong shape; DP is offered with FedAvg only, because its noise
is calibrated to a mean (a trimmed mean or Krum's choice has another sensitivity).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from flwr.common import ndarrays_to_parameters
from flwr.server.strategy import FedAvg, FedTrimmedAvg, Krum, Strategy

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


def trimmed_mean(common: dict[str, Any], options: StrategyOptions) -> Strategy:
    return FedTrimmedAvg(beta=options.trim_beta, **common)


def krum(common: dict[str, Any], options: StrategyOptions) -> Strategy:
    # multi-Krum: keep the n − f updates Krum scores best and average them (f = assumed attackers)
    return Krum(num_malicious_clients=options.krum_malicious,
                num_clients_to_keep=max(1, options.clients - options.krum_malicious), **common)


def build(name: StrategyName, initial: NDArrays, clients: int, evaluate_fn: EvaluateFn | None = None,
          trim_beta: float = 0.2, krum_malicious: int = 0, dp: DPSettings | None = None) -> ScreenedStrategy:
    """A screened Flower strategy in which every one of `clients` organisations trains every round."""
    if name not in STRATEGIES:
        raise ValueError(f"unknown strategy {name!r}; expected one of {', '.join(STRATEGIES)}")
    if dp is not None and name != "fedavg":
        raise ValueError("differential privacy is calibrated for fedavg only")
    common = {"fraction_fit": 1.0, "fraction_evaluate": 0.0, "min_fit_clients": clients,
              "min_evaluate_clients": 0, "min_available_clients": clients, "evaluate_fn": evaluate_fn,
              "on_fit_config_fn": lambda r: {"server_round": r},
              "initial_parameters": ndarrays_to_parameters(initial)}
    inner = STRATEGIES.get(name)(common, StrategyOptions(clients, trim_beta, krum_malicious))
    if dp is not None:
        inner = wrap(inner, dp, clients)
    return ScreenedStrategy(inner, [tuple(p.shape) for p in initial], uniform=dp is not None)
