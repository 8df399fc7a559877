"""Federated learning with Flower on CIC-IDS2017 flows: local-only vs federated vs centralised, poisoning,
differential privacy.

Data: the shipped CIC-IDS2017 sample (../shared/data/flows/cicids2017), classes with ≥ 100 rows (11),
a stratified subsample of at most 1,000 rows per class (400 with --quick), 30 % held out (stratified)
and scored for every model; the rest is split over 10 organisations with Dirichlet(0.5) label skew.
Model: the numpy MLP of swarm/federated/model.py (84 → 32 → 11), the same for every row of the table.
Transport: Flower's own Server loop and strategies in one process (`transport.run_in_process`), for speed;
tests/test_federated.py runs the same strategies over real gRPC with one process per organisation.

Measured, all on the same held-out rows: centralised (pooled rows; the baseline), local-only (each
organisation alone; mean, min and max), FedAvg, trimmed mean and multi-Krum; with 20 % of organisations
poisoned (label flip + model replacement ×10) under FedAvg (the attack works) and the robust strategies;
FedAvg with central DP (Flower's server-side fixed clipping) at two noise levels, the ε spent (δ = 1e-5,
RDP accountant) and its macro-F1 cost; seconds per round. Target: |federated − centralised| ≤ 2 points.

    python bench/federated.py [--quick]
"""

from __future__ import annotations

import argparse
import logging
import os
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from common import peak_rss_mib, report
from healthswarm.swarm.federated.run import (
    FederatedConfig,
    Prepared,
    centralised,
    evaluate,
    federate,
    local_only,
    prepare,
)

DATA = Path(os.environ.get("HEALTHSWARM_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))
DP_NOISE = (0.5, 1.0)
DP_CLIP = 1.0


def federation(prepared: Prepared, config: FederatedConfig) -> dict[str, Any]:
    params, history, rejected, seconds, poisoned = federate(prepared, config)
    scores = evaluate(params, prepared)
    return {**scores, "seconds_per_round": round(seconds, 3), "epsilon": history[-1]["epsilon"],
            "poisoned_clients": sorted(poisoned), "refused": rejected}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer rows and rounds")
    args = parser.parse_args()
    logging.getLogger("flwr").setLevel(logging.ERROR)  # Flower logs every round at INFO
    started = time.perf_counter()
    base = FederatedConfig(data=(DATA / "flows" / "cicids2017",), clients=10, alpha=0.5,
                           rounds=15 if args.quick else 40, local_epochs=2 if args.quick else 3,
                           max_per_class=400 if args.quick else 1000, seed=0)
    prepared = prepare(base)
    central = evaluate(centralised(prepared, base), prepared)
    local = [evaluate(p, prepared)["macro_f1"] for p in local_only(prepared, base)]
    runs: dict[str, dict[str, Any]] = {}
    for name, config in (
        ("fedavg", base),
        ("trimmed_mean", replace(base, strategy="trimmed-mean")),
        ("krum", replace(base, strategy="krum")),
        ("fedavg_poisoned", replace(base, poisoned=0.2)),
        ("trimmed_mean_poisoned", replace(base, strategy="trimmed-mean", poisoned=0.2)),
        ("krum_poisoned", replace(base, strategy="krum", poisoned=0.2)),
        *((f"fedavg_dp_z{z:g}", replace(base, dp_noise=z, dp_clip=DP_CLIP)) for z in DP_NOISE),
    ):
        runs[name] = federation(prepared, config)
    fed = runs["fedavg"]["macro_f1"]
    gap_points = round(100 * (central["macro_f1"] - fed), 2)
    figures: dict[str, Any] = {
        "data": str(base.data[0]), "classes": prepared.classes,
        "rows_train": int(sum(len(p) for p in prepared.partitioning.parts)), "rows_test": len(prepared.test),
        "max_rows_per_class": base.max_per_class, "organisations": base.clients,
        "partition": prepared.partitioning.method,
        "rows_per_organisation": [len(p) for p in prepared.partitioning.parts],
        "rounds": base.rounds, "local_epochs": base.local_epochs, "transport": "in-process (Flower Server)",
        "centralised_baseline": central,
        "local_only": {"mean_macro_f1": round(float(np.mean(local)), 4), "min_macro_f1": min(local),
                       "max_macro_f1": max(local), "per_organisation": local},
        "federated": runs,
        "federated_vs_centralised_gap_points": gap_points, "gap_target_points": 2.0,
        "federated_to_centralised_ratio": round(fed / central["macro_f1"], 4),
        "poisoned_share": 0.2, "attack": "label flip (attacks → BENIGN) + model replacement ×10",
        "dp": {"clipping_norm": DP_CLIP, "delta": base.dp_delta, "unit": "organisation (client-level)",
               "accountant": "RDP, full participation, no subsampling amplification",
               **{f"z{z:g}": {"epsilon": runs[f"fedavg_dp_z{z:g}"]["epsilon"],
                              "macro_f1_cost_points": round(100 * (fed - runs[f"fedavg_dp_z{z:g}"]["macro_f1"]), 2)}
                  for z in DP_NOISE}},
        "seconds_per_round_fedavg": runs["fedavg"]["seconds_per_round"],
        "seconds": round(time.perf_counter() - started, 1), "peak_rss_mib": round(peak_rss_mib(), 1),
    }
    rows = [
        ("rows train / held-out (≤ per class)", f"{figures['rows_train']} / {figures['rows_test']} "
                                                 f"(≤ {base.max_per_class})"),
        ("organisations / rounds × local epochs", f"{base.clients} / {base.rounds} × {base.local_epochs}"),
        ("centralised macro-F1 (baseline)", f"{central['macro_f1']:.4f}"),
        ("local-only macro-F1 mean [min, max]", f"{np.mean(local):.4f} [{min(local):.4f}, {max(local):.4f}]"),
        *((f"{name} macro-F1", f"{r['macro_f1']:.4f}") for name, r in runs.items()),
        ("federated − centralised (target ≤ 2 points)", f"{-gap_points:+.2f} points"),
        *((f"DP z={z:g}: ε (δ=1e-5) / F1 cost", f"{figures['dp'][f'z{z:g}']['epsilon']:.1f} / "
           f"{figures['dp'][f'z{z:g}']['macro_f1_cost_points']:.2f} points") for z in DP_NOISE),
        ("seconds per round (FedAvg, 10 organisations)", f"{runs['fedavg']['seconds_per_round']:.3f}"),
        ("seconds", str(figures["seconds"])),
    ]
    report("federated", figures, rows, args.quick)


if __name__ == "__main__":
    main()
