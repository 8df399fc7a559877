"""Screening of client updates before any strategy sees them: the one custom Flower piece.

Flower's strategies trust what clients send: a NaN in one update makes the FedAvg model NaN, and an
array of another shape makes the aggregation raise mid-round. `ScreenedStrategy` wraps any strategy
(including the DP wrapper, which must see only screened updates) and drops, with a counted reason,
results that do not match the global model's shapes, hold NaN/inf, or claim no rows. A round in which
every update is refused raises `FederationError`: keeping the old model silently would look like a
converged federation.

With `uniform=True` (set under differential privacy) every accepted update weighs the same: the DP
wrapper's noise is calibrated to a plain mean of clipped updates (sensitivity C/m), which a mean
weighted by claimed row counts would not be.
"""

from __future__ import annotations

from collections import Counter

import numpy as np
from flwr.common import EvaluateIns, EvaluateRes, FitIns, FitRes, Parameters, Scalar, parameters_to_ndarrays
from flwr.server.client_manager import ClientManager
from flwr.server.client_proxy import ClientProxy
from flwr.server.strategy import Strategy

from healthswarm.errors import HealthswarmError


class FederationError(HealthswarmError):
    """The federation cannot go on (every update refused, a client failed where none may)."""


def update_problem(params: list[np.ndarray], expected: list[tuple[int, ...]]) -> str | None:
    if len(params) != len(expected):
        return "shape"
    if any(tuple(p.shape) != s for p, s in zip(params, expected, strict=True)):
        return "shape"
    if not all(np.isfinite(p).all() for p in params):
        return "non-finite"
    return None


class ScreenedStrategy(Strategy):
    def __init__(self, inner: Strategy, shapes: list[tuple[int, ...]], uniform: bool = False) -> None:
        super().__init__()
        self.inner = inner
        self.shapes = shapes
        self.uniform = uniform
        #: refused updates by reason, over the whole run
        self.rejected: Counter[str] = Counter()
        #: per round: (accepted, refused by reason)
        self.rounds: dict[int, tuple[int, dict[str, int]]] = {}

    def __repr__(self) -> str:
        return f"Screened({self.inner!r})"

    def initialize_parameters(self, client_manager: ClientManager) -> Parameters | None:
        return self.inner.initialize_parameters(client_manager)

    def configure_fit(self, server_round: int, parameters: Parameters, client_manager: ClientManager
                      ) -> list[tuple[ClientProxy, FitIns]]:
        return self.inner.configure_fit(server_round, parameters, client_manager)

    def aggregate_fit(self, server_round: int, results: list[tuple[ClientProxy, FitRes]],
                      failures: list[tuple[ClientProxy, FitRes] | BaseException]
                      ) -> tuple[Parameters | None, dict[str, Scalar]]:
        kept: list[tuple[ClientProxy, FitRes]] = []
        refused: Counter[str] = Counter()
        for proxy, res in results:
            try:
                params = parameters_to_ndarrays(res.parameters)
            except Exception:  # bytes that are not numpy arrays at all
                refused["malformed"] += 1
                continue
            problem = "no-rows" if res.num_examples <= 0 else update_problem(params, self.shapes)
            if problem:
                refused[problem] += 1
            else:
                if self.uniform:
                    res.num_examples = 1
                kept.append((proxy, res))
        refused["failed"] += len(failures)
        refused = +refused  # drop zero counts
        self.rejected.update(refused)
        self.rounds[server_round] = (len(kept), dict(refused))
        if not kept:
            raise FederationError(f"round {server_round}: every client update was refused ({dict(refused)})")
        # failures were counted here; passing them on would make the DP wrapper skip the whole round
        params, metrics = self.inner.aggregate_fit(server_round, kept, [])
        return params, {**metrics, "accepted": len(kept), "refused": sum(refused.values())}

    def configure_evaluate(self, server_round: int, parameters: Parameters, client_manager: ClientManager
                           ) -> list[tuple[ClientProxy, EvaluateIns]]:
        return self.inner.configure_evaluate(server_round, parameters, client_manager)

    def aggregate_evaluate(self, server_round: int, results: list[tuple[ClientProxy, EvaluateRes]],
                           failures: list[tuple[ClientProxy, EvaluateRes] | BaseException]
                           ) -> tuple[float | None, dict[str, Scalar]]:
        return self.inner.aggregate_evaluate(server_round, results, failures)

    def evaluate(self, server_round: int, parameters: Parameters) -> tuple[float, dict[str, Scalar]] | None:
        return self.inner.evaluate(server_round, parameters)
