"""Federated learning with Flower on small real CIC-IDS2017 subsets: partitions, FedAvg, poisoning and the
robust strategy, update screening, differential privacy, and a real multi-process gRPC run."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from flwr.client import NumPyClient
from flwr.server.strategy.aggregate import aggregate_trimmed_avg
from typer.testing import CliRunner

from conftest import shared
from healthswarm.cli.main import app
from healthswarm.errors import InputError
from healthswarm.swarm.federated.client import FlowClient
from healthswarm.swarm.federated.dp import epsilon, epsilon_per_round
from healthswarm.swarm.federated.model import INPUTS, Architecture, TrainSettings, init_parameters
from healthswarm.swarm.federated.partition import Partitioning, by_group, dirichlet
from healthswarm.swarm.federated.run import FederatedConfig, Prepared, federate, prepare, run_federated
from healthswarm.swarm.federated.screen import FederationError
from healthswarm.swarm.federated.strategies import build
from healthswarm.swarm.federated.transport import run_in_process

FILES = ("BENIGN_2500", "DDoS_2500", "Portscan_2500", "SSH-Patator_2500", "DoS_Hulk_2500")
logging.getLogger("flwr").setLevel(logging.ERROR)


@pytest.fixture(scope="module")
def config() -> FederatedConfig:
    folder = shared("flows", "cicids2017")
    return FederatedConfig(data=tuple(folder / f"{name}.csv" for name in FILES), clients=5, rounds=8,
                           local_epochs=2, max_per_class=200, alpha=1.0, baselines=False)


@pytest.fixture(scope="module")
def prepared(config: FederatedConfig) -> Prepared:
    return prepare(config)


def test_partitions_are_disjoint_cover_the_rows_and_are_skewed(prepared: Prepared) -> None:
    train = np.sort(np.concatenate(prepared.partitioning.parts))
    assert len(train) == len(set(train.tolist())), "a row is in two organisations"
    assert not set(train.tolist()) & set(prepared.test.tolist()), "a held-out row is trained on"
    labels = prepared.y[train]
    for alpha in (0.1, 100.0):
        parts = dirichlet(labels, 5, alpha, seed=3).parts
        joined = np.sort(np.concatenate(parts))
        assert np.array_equal(joined, np.arange(len(labels))) and sum(map(len, parts)) == len(labels)
    skewed = [np.bincount(labels[p], minlength=5) / len(p) for p in dirichlet(labels, 5, 0.1, seed=3).parts]
    iid = [np.bincount(labels[p], minlength=5) / len(p) for p in dirichlet(labels, 5, 100.0, seed=3).parts]
    assert max(s.max() for s in skewed) > max(s.max() for s in iid) + 0.2  # small alpha: dominant classes
    groups = np.asarray(["a", "a", "b", "c", "c", "c"], dtype=object)
    assert [sorted(p.tolist()) for p in by_group(groups, 2).parts] == [[2, 3, 4, 5], [0, 1]]


def test_an_empty_partition_is_an_error() -> None:
    with pytest.raises(InputError, match="received no rows"):
        Partitioning([np.arange(3), np.empty(0, dtype=np.int64)], "hand-made")
    with pytest.raises(InputError, match="rows for 5 organisations"):
        dirichlet(np.zeros(20, dtype=np.int64), 5, 0.5)
    with pytest.raises(InputError, match="groups for 3"):
        by_group(np.asarray(["a", "b"], dtype=object), 3)


def test_fedavg_of_identical_clients_equals_the_local_model(prepared: Prepared) -> None:
    rows = prepared.partitioning.parts[0]
    X, y = prepared.X[rows], prepared.y[rows]
    arch = Architecture(INPUTS, 16, len(prepared.classes))
    settings = TrainSettings(epochs=1, batch_size=32)
    initial = init_parameters(arch, 1)
    final: dict[str, list[np.ndarray]] = {}

    def keep(server_round: int, params: list[np.ndarray], _: dict) -> None:
        final["params"] = params

    clients = [FlowClient(X, y, arch, settings, seed=4).to_client() for _ in range(3)]
    run_in_process(build("fedavg", initial, 3, keep), clients, rounds=3)
    local = FlowClient(X, y, arch, settings, seed=4)
    params = initial
    for r in range(1, 4):
        params = local.fit(params, {"server_round": r})[0]
    for federated, alone in zip(final["params"], params, strict=True):
        np.testing.assert_allclose(federated, alone, rtol=1e-10, atol=1e-12)


def test_trimmed_mean_resists_a_poisoned_client_where_fedavg_degrades(config: FederatedConfig,
                                                                       prepared: Prepared) -> None:
    clean = federate(prepared, config)[1][-1]["macro_f1"]
    poisoned = replace(config, poisoned=0.2, attack="scaled", boost=10.0)  # 1 of 5 organisations
    fedavg = federate(prepared, poisoned)
    robust = federate(prepared, replace(poisoned, strategy="trimmed-mean"))
    assert len(fedavg[4]) == 1 and fedavg[4] == robust[4]
    fedavg_f1, robust_f1 = fedavg[1][-1]["macro_f1"], robust[1][-1]["macro_f1"]
    assert fedavg_f1 < clean - 0.2, (clean, fedavg_f1)   # the attack works on FedAvg
    assert robust_f1 > fedavg_f1 + 0.2, (fedavg_f1, robust_f1)
    assert robust_f1 > clean - 0.1, (clean, robust_f1)


def _rounds_of(strategy_name: str, clients: list[FlowClient], initial: list[np.ndarray], rounds: int,
               momentum: float) -> list[list[np.ndarray]]:
    """The global model after each round of a real in-process Flower federation."""
    seen: list[list[np.ndarray]] = []

    def keep(server_round: int, params: list[np.ndarray], _: dict) -> None:
        if server_round > 0:
            seen.append(params)

    run_in_process(build(strategy_name, initial, len(clients), keep, trim_beta=0.2, server_momentum=momentum),
                   [c.to_client() for c in clients], rounds)
    return seen


def test_trimmed_mean_with_server_momentum_steps_by_the_decaying_sum_of_trimmed_updates(prepared: Prepared) -> None:
    arch = Architecture(INPUTS, 8, len(prepared.classes))
    initial = init_parameters(arch, 2)
    clients = [FlowClient(prepared.X[p], prepared.y[p], arch, TrainSettings(epochs=1, batch_size=32), seed=k)
               for k, p in enumerate(prepared.partitioning.parts)]
    plain = _rounds_of("trimmed-mean", clients, initial, 2, momentum=0.0)
    steered = _rounds_of("trimmed-mean", clients, initial, 3, momentum=0.5)
    # momentum 0 is Flower's trimmed mean of the organisations' models, round after round
    expected, velocity, sent = [], None, initial
    for r in (1, 2):
        fits = [(c.fit(sent, {"server_round": r})[0], len(c.y)) for c in clients]
        trimmed = aggregate_trimmed_avg(fits, 0.2)
        for got, want in zip(plain[r - 1], trimmed, strict=True):
            np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-12)
        sent = trimmed
    # momentum 0.5: v ← 0.5·v + (trimmed − sent), global ← sent + v
    sent = initial
    for r in (1, 2, 3):
        trimmed = aggregate_trimmed_avg([(c.fit(sent, {"server_round": r})[0], len(c.y)) for c in clients], 0.2)
        step = [t - g for t, g in zip(trimmed, sent, strict=True)]
        velocity = step if velocity is None else [0.5 * v + d for v, d in zip(velocity, step, strict=True)]
        sent = [g + v for g, v in zip(sent, velocity, strict=True)]
        expected.append(sent)
    for got_round, want_round in zip(steered, expected, strict=True):
        for got, want in zip(got_round, want_round, strict=True):
            np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-12)
    assert any(not np.allclose(a, b) for a, b in zip(steered[1], plain[1], strict=True)), "momentum changed nothing"


class Broken(NumPyClient):
    """An organisation whose update is NaN or of the wrong shape."""

    def __init__(self, kind: str) -> None:
        self.kind = kind

    def fit(self, parameters: list[np.ndarray], config: dict) -> tuple[list[np.ndarray], int, dict]:
        if self.kind == "nan":
            return [np.full_like(p, np.nan) for p in parameters], 10, {}
        return [p[..., :1] for p in parameters], 10, {}


def test_nan_and_misshapen_updates_are_refused_and_counted(prepared: Prepared) -> None:
    rows = prepared.partitioning.parts[1]
    arch = Architecture(INPUTS, 8, len(prepared.classes))
    initial = init_parameters(arch, 0)
    good = FlowClient(prepared.X[rows], prepared.y[rows], arch, TrainSettings(), seed=0).to_client()
    final: dict[str, list[np.ndarray]] = {}

    def keep(server_round: int, params: list[np.ndarray], _: dict) -> None:
        final["params"] = params

    strategy = build("fedavg", initial, 3, keep)
    run_in_process(strategy, [good, Broken("nan").to_client(), Broken("shape").to_client()], rounds=2)
    assert strategy.rejected == {"non-finite": 2, "shape": 2}
    assert strategy.rounds[2] == (1, {"non-finite": 1, "shape": 1})
    assert all(np.isfinite(p).all() for p in final["params"])
    with pytest.raises(FederationError, match="every client update was refused"):
        run_in_process(build("fedavg", initial, 2), [Broken("nan").to_client(), Broken("shape").to_client()], 1)
    with pytest.raises(ValueError, match="global parameters refused"):
        FlowClient(prepared.X[rows], prepared.y[rows], arch, TrainSettings(), 0).fit(initial[:3], {})


def test_dp_noise_changes_the_model_and_epsilon_grows_with_rounds(config: FederatedConfig,
                                                                  prepared: Prepared) -> None:
    short = replace(config, rounds=3)
    plain = federate(prepared, short)[0]
    noisy_config = replace(short, dp_noise=1.0, dp_clip=1.0)
    noisy, history, *_ = federate(prepared, noisy_config)
    assert any(not np.allclose(a, b) for a, b in zip(plain, noisy, strict=True))
    spent = [h["epsilon"] for h in history]
    assert all(e is not None and e > 0 for e in spent) and spent == sorted(spent) and spent[0] < spent[-1]
    assert np.allclose(federate(prepared, noisy_config)[0][0], noisy[0], atol=1e-9), "seeded noise is reproducible"
    # accountant: one Gaussian round at z = 1, δ = 1e-5 lies between the analytic Gaussian's ≈ 4.4 and the
    # classic RDP bound's ≈ 5.3; more noise spends less, refused updates (fewer sharing the noise) more
    assert 4.0 < epsilon([1.0], 1e-5) < 5.4
    assert epsilon([2.0] * 10, 1e-5) < epsilon([1.0] * 10, 1e-5)
    assert epsilon_per_round(1.0, [5, 4], 5, 1e-5)[1] > epsilon_per_round(1.0, [5, 5], 5, 1e-5)[1]


def test_bad_configuration_is_a_clear_error(config: FederatedConfig) -> None:
    for bad, message in ((dict(strategy="median"), "strategy 'median'"), (dict(clients=1), "1 organisations"),
                         (dict(dp_noise=1.0, strategy="krum"), "differential privacy with krum"),
                         (dict(poisoned=0.6), "poisoned share"), (dict(server_momentum=1.0), "server momentum")):
        with pytest.raises(InputError, match=message):
            replace(config, **bad).check()


@pytest.mark.slow
def test_real_flower_grpc_run_with_client_processes(config: FederatedConfig) -> None:
    report = run_federated(replace(config, clients=3, rounds=3, transport="grpc", baselines=True))
    assert [h["accepted"] for h in report.history] == [3, 3, 3]
    assert report.federated["macro_f1"] > 0.5 and report.local_only is not None and report.centralised
    assert report.flwr_version and report.rejected == {}


def test_node_federate_command(tmp_path: Path) -> None:
    folder = shared("flows", "cicids2017")
    result = CliRunner().invoke(app, ["node", "federate", "-d", str(folder), "--rounds", "2", "--clients", "3",
                                      "--max-per-class", "100", "--no-baselines", "--format", "json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout[result.stdout.index("{"):])
    assert "federated" in json.dumps(report)
    bad = subprocess.run([sys.executable, "-m", "healthswarm", "node", "federate", "-d", str(tmp_path / "none")],
                         capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2 and "no such file" in bad.stderr and "Traceback" not in bad.stderr


def test_node_federate_server_momentum_reaches_the_trimmed_mean(config: FederatedConfig, tmp_path: Path) -> None:
    small = replace(config, clients=3, rounds=3, max_per_class=100, strategy="trimmed-mean")
    data = [arg for path in small.data for arg in ("-d", str(path))]
    result = CliRunner().invoke(app, ["node", "federate", *data, "--clients", "3", "--rounds", "3",
                                      "--local-epochs", str(small.local_epochs), "--alpha", str(small.alpha),
                                      "--max-per-class", "100", "--strategy", "trimmed-mean",
                                      "--server-momentum", "0", "--no-baselines", "--format", "json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout[result.stdout.index("{"):])
    assert report["config"]["server_momentum"] == 0.0
    # the same federation with μ = 0 given in Python, and unlike the default μ = 0.5: the option reached the strategy
    plain, steered = run_federated(replace(small, server_momentum=0.0)), run_federated(small)
    scores = [[(h["macro_f1"], h["accuracy"]) for h in history]
              for history in (report["history"], plain.history, steered.history)]
    assert scores[0] == scores[1] and scores[0] != scores[2]
    bad = subprocess.run([sys.executable, "-m", "healthswarm", "node", "federate", "-d", str(tmp_path / "none"),
                          "--strategy", "trimmed-mean", "--server-momentum", "1"],
                         capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2 and "Traceback" not in bad.stderr
    assert "--server-momentum: server momentum 1.0 (expected a value in [0, 1))" in bad.stderr, bad.stderr
