"""One organisation in the federation: a Flower NumPyClient over its own rows.

The rows are encoded once and never leave the object; `fit` receives the global parameters, trains
locally and returns parameters, the row count and the local loss. Parameters that do not fit the
agreed architecture are refused (a ValueError Flower reports as a failed client), never trained on.
The per-round seed comes from the client's seed and the server round, so a run is reproducible.
"""

from __future__ import annotations

import numpy as np
from flwr.client import NumPyClient

from healthswarm.swarm.federated.model import (
    Architecture,
    NDArrays,
    TrainSettings,
    check_parameters,
    log_loss,
    predict_proba,
    train,
)
from healthswarm.swarm.federated.poison import Attack

Config = dict[str, bool | bytes | float | int | str]


class FlowClient(NumPyClient):
    def __init__(self, X: np.ndarray, y: np.ndarray, arch: Architecture, settings: TrainSettings, seed: int,
                 attack: Attack | None = None) -> None:
        if len(X) == 0 or len(X) != len(y):
            raise ValueError(f"a client needs labelled rows: {len(X)} rows, {len(y)} labels")
        if X.shape[1] != arch.inputs:
            raise ValueError(f"rows have {X.shape[1]} features, the model {arch.inputs}")
        self.X, self.y, self.arch, self.settings, self.seed, self.attack = X, y, arch, settings, seed, attack

    def _accept(self, parameters: NDArrays) -> NDArrays:
        problem = check_parameters(parameters, self.arch)
        if problem:
            raise ValueError(f"global parameters refused: {problem}")
        return [np.asarray(p, dtype=np.float64) for p in parameters]

    def get_parameters(self, config: Config) -> NDArrays:
        raise ValueError("the server supplies the initial parameters")  # why: no client decides the start

    def fit(self, parameters: NDArrays, config: Config) -> tuple[NDArrays, int, Config]:
        start = self._accept(parameters)
        labels = self.attack.labels(self.y) if self.attack else self.y
        seed = self.seed * 100_003 + int(config.get("server_round", 0))
        trained = train(start, self.X, labels, self.settings, seed)
        sent = self.attack.update(start, trained) if self.attack else trained
        return sent, len(self.y), {"loss": log_loss(trained, self.X, labels)}

    def evaluate(self, parameters: NDArrays, config: Config) -> tuple[float, int, Config]:
        params = self._accept(parameters)
        accuracy = float((predict_proba(params, self.X).argmax(axis=1) == self.y).mean())
        return log_loss(params, self.X, self.y), len(self.y), {"accuracy": accuracy}
