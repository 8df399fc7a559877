"""Orchestration: data → held-out split → per-organisation partitions → Flower rounds → report.

`run_federated(config)` is what the CLI calls. It reads CICFlowMeter files, keeps classes with at least
`min_class_rows` rows (Heartbleed, SQL injection and XSS have 8–13 rows in the shipped sample: too few
to split over ten organisations and still test), optionally subsamples each class, holds out a
stratified `test_share` that no organisation trains on, partitions the rest (Dirichlet label skew),
and trains one federation. With `baselines`, the same model is also trained centrally on the pooled
training rows and locally by each organisation alone, all scored on the same held-out rows.

The held-out rows are scored by the server's `evaluate_fn`: that is the benchmark's referee, not part
of the protocol. The class list is the consortium's agreed schema (the layout's label names), not
something an organisation's data reveals.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from importlib.metadata import version
from pathlib import Path
from typing import Any

import numpy as np
from flwr.client import Client

from healthswarm.detect.learn.datasets import LabelledData, read_labelled
from healthswarm.detect.learn.metrics import classification_report
from healthswarm.detect.learn.splits import stratified
from healthswarm.errors import InputError, Location, Problem
from healthswarm.swarm.federated.client import FlowClient
from healthswarm.swarm.federated.dp import DPSettings, epsilon_per_round
from healthswarm.swarm.federated.model import (
    INPUTS,
    Architecture,
    NDArrays,
    TrainSettings,
    encode_flows,
    init_parameters,
    predict_proba,
    train,
)
from healthswarm.swarm.federated.partition import Partitioning, dirichlet
from healthswarm.swarm.federated.poison import ATTACKS, Attack, AttackKind, poisoned_clients
from healthswarm.swarm.federated.strategies import STRATEGIES, StrategyName, build
from healthswarm.swarm.federated.transport import ClientLauncher, run_grpc, run_in_process

TRANSPORTS = ("in-process", "grpc")


@dataclass(frozen=True)
class FederatedConfig:
    data: tuple[Path, ...]
    clients: int = 10
    rounds: int = 20
    strategy: StrategyName = "fedavg"
    alpha: float = 0.5
    local_epochs: int = 1
    batch_size: int = 64
    learning_rate: float = 3e-3
    hidden: int = 32
    trim_beta: float = 0.2
    #: trimmed mean: momentum of the server's step (0 = Flower's FedTrimmedAvg; see strategies.py)
    server_momentum: float = 0.5
    #: attackers Krum assumes; None = as many as are poisoned, at least one
    krum_malicious: int | None = None
    poisoned: float = 0.0
    attack: AttackKind = "scaled"
    boost: float = 10.0
    dp_noise: float | None = None
    dp_clip: float = 1.0
    dp_delta: float = 1e-5
    min_class_rows: int = 100
    max_per_class: int | None = None
    test_share: float = 0.3
    seed: int = 0
    transport: str = "in-process"
    baselines: bool = True

    def check(self) -> None:
        # each problem names the option of `healthswarm node federate` that sets it, so the line says what to fix
        problems = []
        if self.strategy not in STRATEGIES:
            problems.append(Problem(Location("--strategy"), f"strategy {self.strategy!r}", " or ".join(STRATEGIES)))
        if self.attack not in ATTACKS:
            problems.append(Problem(Location("--attack"), f"attack {self.attack!r}", " or ".join(ATTACKS)))
        if self.transport not in TRANSPORTS:
            problems.append(Problem(Location("--transport"), f"transport {self.transport!r}",
                                    " or ".join(TRANSPORTS)))
        if self.clients < 2 or self.rounds < 1:
            problems.append(Problem(Location("--clients/--rounds"), f"{self.clients} organisations, "
                                    f"{self.rounds} rounds", "at least 2 organisations and 1 round"))
        if not 0 <= self.poisoned < 0.5:
            problems.append(Problem(Location("--poisoned"), f"poisoned share {self.poisoned}", "a share in [0, 0.5)"))
        if self.dp_noise is not None and self.strategy != "fedavg":
            problems.append(Problem(Location("--dp-noise"), "differential privacy with " + self.strategy, "fedavg"))
        if not 0 <= self.server_momentum < 1:
            problems.append(Problem(Location("--server-momentum"), f"server momentum {self.server_momentum}",
                                    "a value in [0, 1)"))
        if not 0 < self.test_share < 1:
            problems.append(Problem(Location("<federate>"), f"test share {self.test_share}", "between 0 and 1"))
        if problems:
            raise InputError(problems)

    @property
    def dp(self) -> DPSettings | None:
        return None if self.dp_noise is None else DPSettings(self.dp_noise, self.dp_clip, self.dp_delta)

    @property
    def settings(self) -> TrainSettings:
        return TrainSettings(self.local_epochs, self.batch_size, self.learning_rate)


@dataclass
class Prepared:
    """The encoded rows, the classes, the held-out rows and each organisation's rows (absolute indices)."""

    paths: tuple[Path, ...]
    classes: list[str]
    benign: str
    X: np.ndarray
    y: np.ndarray  # class index, -1 for rows of classes left out
    test: np.ndarray
    partitioning: Partitioning  # absolute row indices per organisation

    @property
    def arch_inputs(self) -> int:
        return self.X.shape[1]


@dataclass
class FederatedReport:
    config: dict[str, Any]
    flwr_version: str
    classes: list[str]
    rows: dict[str, Any]
    partition: dict[str, Any]
    poisoned_clients: list[int]
    history: list[dict[str, Any]]
    federated: dict[str, Any]
    seconds_per_round: float
    rejected: dict[str, int]
    epsilon: float | None = None
    centralised: dict[str, Any] | None = None
    local_only: dict[str, Any] | None = None
    notes: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def data_files(paths: tuple[Path, ...]) -> list[Path]:
    """Files, with folders expanded to their CSV files in name order (the row order every client
    process must reproduce)."""
    files: list[Path] = []
    for path in paths:
        files += sorted(path.glob("*.csv")) if path.is_dir() else [path]
    return files


def _load(config: FederatedConfig) -> tuple[LabelledData, list[str]]:
    data = read_labelled(data_files(config.data), layout="cicflowmeter")
    names, counts = np.unique(data.labels.astype(str), return_counts=True)
    classes = [str(n) for n, c in zip(names, counts, strict=True) if c >= config.min_class_rows]
    if data.benign not in classes or len(classes) < 2:
        raise InputError(Problem(Location(str(config.data[0])), f"classes with ≥ {config.min_class_rows} rows: "
                                 f"{classes}", "the benign class and at least one attack class"))
    return data, classes


def labels_to_index(labels: np.ndarray, classes: list[str]) -> np.ndarray:
    lookup = {c: i for i, c in enumerate(classes)}
    return np.asarray([lookup.get(str(v), -1) for v in labels], dtype=np.int64)


def prepare(config: FederatedConfig) -> Prepared:
    config.check()
    data, classes = _load(config)
    y = labels_to_index(data.labels, classes)
    kept = np.flatnonzero(y >= 0)
    if config.max_per_class is not None:  # stratified subsample: at most max_per_class rows of each class
        rng = np.random.default_rng(config.seed)
        kept = np.sort(np.concatenate([rng.permutation(kept[y[kept] == k])[: config.max_per_class]
                                       for k in range(len(classes))]))
    train_rel, test_rel = stratified(y[kept], config.test_share, config.seed)
    train_abs, test_abs = kept[train_rel], kept[test_rel]
    local = dirichlet(y[train_abs], config.clients, config.alpha, config.seed)
    partitioning = Partitioning([train_abs[p] for p in local.parts], local.method)
    return Prepared(tuple(config.data), classes, data.benign, encode_flows(data.table), y, test_abs, partitioning)


def arch_of(prepared: Prepared, config: FederatedConfig) -> Architecture:
    return Architecture(INPUTS, config.hidden, len(prepared.classes))


def evaluate(params: NDArrays, prepared: Prepared) -> dict[str, Any]:
    """Macro-F1, accuracy and attack-vs-benign F1 on the held-out rows."""
    proba = predict_proba(params, prepared.X[prepared.test])
    classes = np.asarray(prepared.classes, dtype=object)
    truth = classes[prepared.y[prepared.test]]
    report = classification_report(truth, classes[proba.argmax(axis=1)], prepared.benign,
                                   classes=prepared.classes)
    return {"macro_f1": round(report["macro_f1"], 4), "accuracy": round(report["accuracy"], 4),
            "binary_f1": round(report["binary"]["f1"], 4)}


def _attack(prepared: Prepared, config: FederatedConfig) -> Attack:
    return Attack(config.attack, prepared.classes.index(prepared.benign), config.boost)


def make_client(prepared: Prepared, config: FederatedConfig, k: int, poisoned: set[int]) -> FlowClient:
    rows = prepared.partitioning.parts[k]
    return FlowClient(prepared.X[rows], prepared.y[rows], arch_of(prepared, config), config.settings,
                      config.seed + k, _attack(prepared, config) if k in poisoned else None)


@dataclass(frozen=True)
class ClientSpec:
    """What a client process gets: where the data is and which rows are its own; it reads them itself."""

    files: tuple[str, ...]
    rows: tuple[int, ...]
    classes: tuple[str, ...]
    inputs: int
    hidden: int
    settings: TrainSettings
    seed: int
    attack: Attack | None


def client_from_spec(spec: object) -> Client:
    """Runs in the client's own process: read the files, keep this organisation's rows, build the client."""
    assert isinstance(spec, ClientSpec)
    data = read_labelled([Path(f) for f in spec.files], layout="cicflowmeter")
    rows = np.asarray(spec.rows, dtype=np.int64)
    X = encode_flows(data.table.take(rows))
    y = labels_to_index(data.labels[rows], list(spec.classes))
    return FlowClient(X, y, Architecture(spec.inputs, spec.hidden, len(spec.classes)), spec.settings, spec.seed,
                      spec.attack).to_client()


def federate(prepared: Prepared, config: FederatedConfig) -> tuple[NDArrays, list[dict[str, Any]], dict[str, int],
                                                                    float, set[int]]:
    """One federation: final parameters, per-round history, refused updates, seconds per round, attackers."""
    arch = arch_of(prepared, config)
    initial = init_parameters(arch, config.seed)
    poisoned = poisoned_clients(config.clients, config.poisoned, config.seed)
    final: dict[str, NDArrays] = {}
    scores: dict[int, dict[str, Any]] = {}

    def evaluate_fn(server_round: int, params: NDArrays, _: dict) -> tuple[float, dict]:
        final["params"] = params
        scores[server_round] = evaluate(params, prepared)
        return 0.0, scores[server_round]

    malicious = config.krum_malicious if config.krum_malicious is not None else max(1, len(poisoned))
    strategy = build(config.strategy, initial, config.clients, evaluate_fn, config.trim_beta, malicious, config.dp,
                     config.server_momentum)
    np.random.seed(config.seed)  # why: Flower's DP wrapper draws its noise from numpy's global generator
    start = time.perf_counter()
    if config.transport == "grpc":
        files = tuple(str(f) for f in data_files(prepared.paths))
        launchers = [ClientLauncher(client_from_spec, ClientSpec(
            files, tuple(int(r) for r in prepared.partitioning.parts[k]), tuple(prepared.classes), arch.inputs,
            arch.hidden, config.settings, config.seed + k,
            _attack(prepared, config) if k in poisoned else None)) for k in range(config.clients)]
        run_grpc(strategy, launchers, config.rounds)
    else:
        run_in_process(strategy, [make_client(prepared, config, k, poisoned).to_client()
                                  for k in range(config.clients)], config.rounds)
    seconds = (time.perf_counter() - start) / config.rounds
    accepted = [strategy.rounds.get(r, (0, {}))[0] for r in range(1, config.rounds + 1)]
    eps = (epsilon_per_round(config.dp_noise, accepted, config.clients, config.dp_delta)
           if config.dp_noise is not None else [None] * config.rounds)
    history = [{"round": r, **scores.get(r, {}), "accepted": accepted[r - 1],
                "refused": strategy.rounds.get(r, (0, {}))[1], "epsilon": eps[r - 1]}
               for r in range(1, config.rounds + 1)]
    return final["params"], history, dict(strategy.rejected), seconds, poisoned


def centralised(prepared: Prepared, config: FederatedConfig) -> NDArrays:
    """The same model on the pooled training rows, for as many epochs as one organisation trains in all rounds."""
    rows = np.sort(np.concatenate(prepared.partitioning.parts))
    settings = TrainSettings(config.rounds * config.local_epochs, config.batch_size, config.learning_rate)
    return train(init_parameters(arch_of(prepared, config), config.seed), prepared.X[rows], prepared.y[rows],
                 settings, config.seed)


def local_only(prepared: Prepared, config: FederatedConfig) -> list[NDArrays]:
    settings = TrainSettings(config.rounds * config.local_epochs, config.batch_size, config.learning_rate)
    start = init_parameters(arch_of(prepared, config), config.seed)
    return [train(start, prepared.X[p], prepared.y[p], settings, config.seed + k)
            for k, p in enumerate(prepared.partitioning.parts)]


def run_federated(config: FederatedConfig) -> FederatedReport:
    prepared = prepare(config)
    params, history, rejected, seconds, poisoned = federate(prepared, config)
    y = prepared.y
    report = FederatedReport(
        config={k: (list(map(str, v)) if k == "data" else v) for k, v in asdict(config).items()},
        flwr_version=version("flwr"),
        classes=prepared.classes,
        rows={"train": int(sum(len(p) for p in prepared.partitioning.parts)), "test": len(prepared.test),
              "per_client": [len(p) for p in prepared.partitioning.parts]},
        partition={"method": prepared.partitioning.method,
                   "classes_per_client": prepared.partitioning.summary(np.asarray(prepared.classes)[y])},
        poisoned_clients=sorted(poisoned),
        history=history,
        federated=evaluate(params, prepared),
        seconds_per_round=round(seconds, 3),
        rejected=rejected,
        epsilon=history[-1]["epsilon"],
    )
    if config.dp_noise is not None:
        report.notes.append(f"client-level (ε, δ={config.dp_delta:g})-DP by RDP accounting, full participation, "
                            "no subsampling amplification; the server sees unclipped updates")
    if config.baselines:
        report.centralised = evaluate(centralised(prepared, config), prepared)
        local = [evaluate(p, prepared)["macro_f1"] for p in local_only(prepared, config)]
        report.local_only = {"mean_macro_f1": round(float(np.mean(local)), 4), "min_macro_f1": min(local),
                             "max_macro_f1": max(local), "per_client": local}
    return report
