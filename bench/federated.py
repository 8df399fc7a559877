"""Federated learning with Flower on CIC-IDS2017 flows: local-only vs federated vs centralised, poisoning,
differential privacy.

Data: the shipped CIC-IDS2017 sample (../shared/data/flows/cicids2017), classes with ≥ 100 rows (11),
a stratified subsample of at most 1,000 rows per class (400 with --quick), 30 % held out (stratified)
and scored for every model; the rest is split over 10 organisations with Dirichlet(0.5) label skew.
Model: the numpy MLP of swarm/federated/model.py (84 → 32 → 11), the same for every row of the table.
Transport: Flower's own Server loop and strategies in one process (`transport.run_in_process`), for speed;
tests/test_federated.py runs the same strategies over real gRPC with one process per organisation.

Measured, all on the same held-out rows, for each of 5 seeds (the seed draws the subsample, the held-out
rows, the partition, the initial model and the attackers), with the median over the seeds as the figure:
centralised (pooled rows; the baseline, trained in the same run), local-only (each organisation alone;
mean, min and max), FedAvg, the trimmed mean (β = 0.2, server momentum 0.5; see strategies.py), the same
trimmed mean without momentum (Flower's FedTrimmedAvg, the earlier strategy) and multi-Krum; with 20 % of
organisations poisoned (label flip + model replacement ×10) under FedAvg (the attack works) and the
robust strategies. FedAvg with central DP (Flower's server-side fixed clipping) at two noise levels, the
ε spent (δ = 1e-5, RDP accountant) and its macro-F1 cost: seed 0 only. Times are CPU seconds of this
process per round (the machine is shared); the 1-minute load average is recorded at start and end.
Target: trimmed mean − centralised ≥ −2 points (median over the seeds), and the poisoned trimmed mean
robust (FedAvg poisoned collapses).

    python bench/federated.py [--quick]
"""

from __future__ import annotations

import argparse
import logging
import os
import statistics
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from common import cpu_timed, peak_rss_mib, report
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


SEEDS = (0, 1, 2, 3, 4)
KEY_ROWS = ("fedavg", "trimmed_mean", "trimmed_mean_no_momentum", "krum", "fedavg_poisoned",
            "trimmed_mean_poisoned", "trimmed_mean_no_momentum_poisoned", "krum_poisoned")


def federation(prepared: Prepared, config: FederatedConfig) -> dict[str, Any]:
    (params, history, rejected, _, poisoned), cpu = cpu_timed(lambda: federate(prepared, config))
    scores = evaluate(params, prepared)
    return {**scores, "cpu_seconds_per_round": round(cpu / config.rounds, 3), "epsilon": history[-1]["epsilon"],
            "poisoned_clients": sorted(poisoned), "refused": rejected}


def key_configs(base: FederatedConfig) -> dict[str, FederatedConfig]:
    trimmed = replace(base, strategy="trimmed-mean")
    plain = replace(trimmed, server_momentum=0.0)
    krum = replace(base, strategy="krum")
    return {"fedavg": base, "trimmed_mean": trimmed, "trimmed_mean_no_momentum": plain, "krum": krum,
            **{f"{name}_poisoned": replace(c, poisoned=0.2) for name, c in
               (("fedavg", base), ("trimmed_mean", trimmed), ("trimmed_mean_no_momentum", plain), ("krum", krum))}}


def one_seed(base: FederatedConfig) -> dict[str, Any]:
    """Every key row for one seed: the centralised baseline, local-only and the federations."""
    prepared, t_prepare = cpu_timed(lambda: prepare(base))
    central, t_central = cpu_timed(lambda: evaluate(centralised(prepared, base), prepared))
    local = [evaluate(p, prepared)["macro_f1"] for p in local_only(prepared, base)]
    runs = {name: federation(prepared, config) for name, config in key_configs(base).items()}
    gaps = {name: round(100 * (r["macro_f1"] - central["macro_f1"]), 2) for name, r in runs.items()}
    return {"seed": base.seed, "prepared": prepared, "prepare_cpu_s": round(t_prepare, 2),
            "centralised": {**central, "cpu_s": round(t_central, 2)},
            "local_only": {"mean_macro_f1": round(float(np.mean(local)), 4), "min_macro_f1": min(local),
                           "max_macro_f1": max(local), "per_organisation": local},
            "federated": runs, "gap_to_centralised_points": gaps}


def med(values: list[float]) -> float:
    return round(statistics.median(values), 4)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer rows and rounds")
    args = parser.parse_args()
    logging.getLogger("flwr").setLevel(logging.ERROR)  # Flower logs every round at INFO
    started, load_start = time.process_time(), os.getloadavg()[0]
    base = FederatedConfig(data=(DATA / "flows" / "cicids2017",), clients=10, alpha=0.5,
                           rounds=15 if args.quick else 40, local_epochs=2 if args.quick else 3,
                           max_per_class=400 if args.quick else 1000, seed=0)
    seeds = [one_seed(replace(base, seed=seed)) for seed in SEEDS]
    prepared = seeds[0]["prepared"]
    dp_runs = {f"fedavg_dp_z{z:g}": federation(prepared, replace(base, dp_noise=z, dp_clip=DP_CLIP)) for z in DP_NOISE}
    central = {m: med([s["centralised"][m] for s in seeds]) for m in ("macro_f1", "accuracy", "binary_f1")}
    median_rows = {name: {m: med([s["federated"][name][m] for s in seeds])
                          for m in ("macro_f1", "accuracy", "binary_f1", "cpu_seconds_per_round")} for name in KEY_ROWS}
    gaps = {name: med([s["gap_to_centralised_points"][name] for s in seeds]) for name in KEY_ROWS}
    fed0 = seeds[0]["federated"]["fedavg"]["macro_f1"]
    figures: dict[str, Any] = {
        "data": str(base.data[0]), "classes": prepared.classes,
        "rows_train": int(sum(len(p) for p in prepared.partitioning.parts)), "rows_test": len(prepared.test),
        "max_rows_per_class": base.max_per_class, "organisations": base.clients,
        "partition": f"dirichlet(alpha={base.alpha:g}), seeds {list(SEEDS)}",
        "rounds": base.rounds, "local_epochs": base.local_epochs, "transport": "in-process (Flower Server)",
        "trimmed_mean": {"beta": base.trim_beta, "server_momentum": base.server_momentum},
        "seeds": list(SEEDS),
        "median_over_seeds": {"centralised_baseline": central,
                              "local_only_mean_macro_f1": med([s["local_only"]["mean_macro_f1"] for s in seeds]),
                              **median_rows},
        "gap_to_centralised_points_median": gaps,
        "per_seed": [{k: v for k, v in s.items() if k != "prepared"} for s in seeds],
        "targets": {"trimmed_mean_within_2_points": gaps["trimmed_mean"] >= -2.0,
                    "trimmed_mean_poisoned_within_2_points": gaps["trimmed_mean_poisoned"] >= -2.0,
                    "fedavg_poisoned_collapses": median_rows["fedavg_poisoned"]["macro_f1"] < 0.5},
        "gap_target_points": 2.0,
        "poisoned_share": 0.2, "attack": "label flip (attacks → BENIGN) + model replacement ×10",
        "dp_seed_0": {"clipping_norm": DP_CLIP, "delta": base.dp_delta, "unit": "organisation (client-level)",
                      "accountant": "RDP, full participation, no subsampling amplification", "runs": dp_runs,
                      **{f"z{z:g}": {"epsilon": dp_runs[f"fedavg_dp_z{z:g}"]["epsilon"],
                                     "macro_f1_cost_points": round(
                                         100 * (fed0 - dp_runs[f"fedavg_dp_z{z:g}"]["macro_f1"]), 2)}
                         for z in DP_NOISE}},
        "cpu_seconds": round(time.process_time() - started, 1), "peak_rss_mib": round(peak_rss_mib(), 1),
        "load_average_1min": {"start": round(load_start, 2), "end": round(os.getloadavg()[0], 2)},
    }
    per_seed = " / ".join
    rows = [
        ("rows train / held-out (≤ per class), seed 0", f"{figures['rows_train']} / {figures['rows_test']} "
                                                        f"(≤ {base.max_per_class})"),
        ("organisations / rounds × local epochs / seeds", f"{base.clients} / {base.rounds} × {base.local_epochs} / "
                                                          f"{len(SEEDS)}"),
        ("centralised macro-F1 (baseline), median [per seed]",
         f"{central['macro_f1']:.4f} [{per_seed(format(s['centralised']['macro_f1'], '.4f') for s in seeds)}]"),
        ("local-only mean macro-F1, median", f"{figures['median_over_seeds']['local_only_mean_macro_f1']:.4f}"),
        *((f"{name} macro-F1, median [gap to centralised per seed, points]",
           f"{median_rows[name]['macro_f1']:.4f} "
           f"[{per_seed(format(s['gap_to_centralised_points'][name], '+.2f') for s in seeds)}]")
          for name in KEY_ROWS),
        ("trimmed mean − centralised, median (target ≥ −2 points)", f"{gaps['trimmed_mean']:+.2f} points"),
        ("poisoned trimmed mean − centralised, median", f"{gaps['trimmed_mean_poisoned']:+.2f} points"),
        *((f"DP z={z:g} (seed 0): ε (δ=1e-5) / F1 cost", f"{figures['dp_seed_0'][f'z{z:g}']['epsilon']:.1f} / "
           f"{figures['dp_seed_0'][f'z{z:g}']['macro_f1_cost_points']:.2f} points") for z in DP_NOISE),
        ("CPU s per round, FedAvg / trimmed mean, median", f"{median_rows['fedavg']['cpu_seconds_per_round']:.3f} / "
                                                           f"{median_rows['trimmed_mean']['cpu_seconds_per_round']:.3f}"),
        ("CPU seconds / 1-min load average start, end", f"{figures['cpu_seconds']} / "
                                                        f"{figures['load_average_1min']['start']}, "
                                                        f"{figures['load_average_1min']['end']}"),
    ]
    report("federated", figures, rows, args.quick)


if __name__ == "__main__":
    main()
