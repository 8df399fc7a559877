"""Evaluation that asks whether a model catches what it was not trained on.

- `leave_out`: train a model kind without one attack class (or family: `DoS` is every `DoS *` class,
  `PortScan` every port-scan class), then measure how much of that class is still flagged and at what
  false-alarm rate on held-out benign rows. The left-out rows are all unseen, so all of them count.
  Held-out benign and left-out flows are scored as one stream (a hybrid's source windows see both);
  where a host sends both, the false-alarm rate is also given for the benign flows of the other hosts.
- `nsl_kdd_figures`: binary accuracy on KDDTest+ and on KDDTest-21, beside the recorded figures of
  Tavallaee et al. 2009. KDDTest-21 is the subset of KDDTest+ whose difficulty (the file's last
  column: how many of 21 learners classified the record right) is below 21 — 11,850 of 22,544 rows,
  the published size; it is selected from KDDTest+, never a file of its own.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from healthswarm.detect.learn.datasets import LabelledData, read_labelled
from healthswarm.detect.learn.flow_detector import canonical
from healthswarm.detect.learn.registry import model_class
from healthswarm.errors import InputError, Location, Problem

#: Tavallaee, Bagheri, Lu, Ghorbani 2009, "A detailed analysis of the KDD CUP 99 data set", table of
#: accuracies on KDDTest+ / KDDTest-21 (trained on the full KDDTrain+; recorded, not measured here; the
#: three best classic classifiers of the paper's table).
TAVALLAEE_2009 = {
    "source": "Tavallaee et al. 2009, A detailed analysis of the KDD CUP 99 data set (recorded, not measured)",
    "J48": {"KDDTest+": 0.811, "KDDTest-21": 0.640},
    "NBTree": {"KDDTest+": 0.820, "KDDTest-21": 0.662},
    "Random Forest": {"KDDTest+": 0.807, "KDDTest-21": 0.633},
}
HARD = 21  # difficulty of records every one of the 21 learners got right


def matches(data: LabelledData, target: str) -> np.ndarray:
    """Rows of class or family `target`: a label (or, on NSL-KDD, an attack name) equal to it, or whose
    first word is it (`DoS` → `DoS Hulk`, …); `PortScan` also takes every label containing "portscan"."""
    want = canonical(target).replace("_", " ")
    out = np.zeros(len(data), dtype=bool)
    for values in (data.labels, data.details):
        if len(values) != len(data):
            continue
        for value in set(values):
            c = canonical(str(value)).replace("_", " ")
            first = c.replace("-", " ").split()[0] if c else ""
            if c == want or first == want or (want in {"portscan", "port scan"} and "portscan" in c.replace(" ", "")):
                out |= values == value
    return out


def _assess(model: Any, data: LabelledData) -> tuple[np.ndarray, np.ndarray]:
    """Predicted labels and scores of flows taken as one stream (a hybrid's source windows need their
    neighbours)."""
    from healthswarm.detect.learn.training import assess

    labels, scores = assess(model, data, "other")
    return np.asarray(labels, dtype=object), np.asarray(scores, dtype=np.float64)


def _quantiles(scores: np.ndarray, qs: Sequence[int]) -> dict[str, float]:
    return {f"p{q}": round(float(v), 4) for q, v in zip(qs, np.percentile(scores, qs), strict=True)}


def leave_out(kind: str | type, paths: Sequence[Path], target: str, params: dict[str, Any] | None = None,
              test: float = 0.3, seed: int = 0, data: LabelledData | None = None) -> dict[str, Any]:
    """Train `kind` on the stratified training part minus every `target` row; flag the target rows and the
    held-out benign rows. The figures `model evaluate --leave-out` prints and records in the card."""
    from healthswarm.detect.learn.training import split

    data = data if data is not None else read_labelled(list(paths))
    out = matches(data, target)
    if not out.any():
        known = sorted(set(data.labels) - {data.benign})
        raise InputError(Problem(Location("--leave-out"), f"no rows of class {target!r}",
                                 "one of " + ", ".join(known) + " (or a family such as DoS, PortScan)"))
    if (data.labels[out] == data.benign).any():
        raise InputError(Problem(Location("--leave-out"), f"{target!r} includes benign rows", "an attack class"))
    train_idx, test_idx = split(data, "stratified", test, seed)
    train_idx = train_idx[~out[train_idx]]
    cls = model_class(kind, Location("KIND")) if isinstance(kind, str) else kind
    model = cls.from_data(data, train_idx, **(params or {}))
    benign_test = test_idx[data.labels[test_idx] == data.benign]
    target_idx = np.flatnonzero(out)
    # one stream of the held-out benign flows and the left-out class, as a network would carry them
    labels, scores = _assess(model, data.take(np.concatenate([benign_test, target_idx])))
    flagged_benign = labels[: len(benign_test)] != data.benign
    labels = labels[len(benign_test):]
    # where the left-out rows' scores lie among the benign ones': why a class is missed, when it is
    profile = {"target": _quantiles(scores[len(benign_test):], (10, 25, 50, 75, 90)),
               "benign": _quantiles(scores[: len(benign_test)], (50, 90, 99))}
    flagged_target = labels != data.benign
    per_class = {}
    for label in sorted(set(data.labels[target_idx])):
        sel = data.labels[target_idx] == label
        per_class[str(label)] = {"rows": int(sel.sum()), "flagged": round(float(flagged_target[sel].mean()), 4)}
    # benign flows of a host that is itself a source of the left-out class (CIC-IDS2017: the PC that the
    # Infiltration scans from) are flagged with good reason once windows see the host scanning
    other_hosts = None
    if len(data.hosts) == len(data):
        attackers = set(data.hosts[target_idx])
        elsewhere = np.asarray([h not in attackers for h in data.hosts[benign_test]], dtype=bool)
        if elsewhere.any() and not elsewhere.all():
            other_hosts = {"benign_test_rows": int(elsewhere.sum()),
                           "false_alarm_rate": round(float(flagged_benign[elsewhere].mean()), 4)}
    values, counts = np.unique(labels[flagged_target], return_counts=True)  # a known class, or "novel"
    named = {str(v): int(c) for v, c in sorted(zip(values, counts, strict=True), key=lambda p: -p[1])[:5]}
    return {
        "left_out": target, "classes": sorted(str(c) for c in set(data.labels[target_idx])),
        "kind": kind if isinstance(kind, str) else getattr(kind, "kind", "") or kind.__name__,
        "params": params or {}, "train_rows": len(train_idx), "target_rows": len(target_idx),
        "flagged": round(float(flagged_target.mean()), 4), "per_class": per_class,
        "benign_test_rows": len(benign_test), "false_alarm_rate": round(float(flagged_benign.mean()), 4),
        "flagged_as": named, "benign_of_other_hosts": other_hosts, "score_profile": profile,
        "split": {"method": "stratified", "test_share": test, "seed": seed},
    }


def difficulty(data: LabelledData) -> np.ndarray:
    """NSL-KDD difficulty of every row, read from its file and line (the layout keeps it out of the table)."""
    cache: dict[str, list[int]] = {}
    out = np.empty(len(data), dtype=np.int64)
    for i in range(len(data)):
        path, _, line = data.table.where(i).rpartition(":")
        if path not in cache:
            with open(path, encoding="utf-8", errors="replace") as stream:
                cache[path] = [int(r.rstrip("\r\n").rsplit(",", 1)[-1]) if r.strip() else -1 for r in stream]
        out[i] = cache[path][int(line) - 1]
    return out


def nsl_kdd_figures(data: LabelledData, predicted: np.ndarray, keep: np.ndarray | None = None) -> dict[str, Any]:
    """Binary accuracy (attack vs normal) on the rows, and on their KDDTest-21 part (difficulty < 21)."""
    keep = np.ones(len(data), dtype=bool) if keep is None else keep
    truth = data.labels != data.benign
    flagged = np.asarray(predicted, dtype=object) != data.benign
    hard = (difficulty(data) < HARD) & keep

    def figures(sel: np.ndarray) -> dict[str, Any]:
        if not sel.any():
            return {"rows": 0}
        return {"rows": int(sel.sum()), "accuracy": round(float((flagged[sel] == truth[sel]).mean()), 4),
                "attack_recall": round(float(flagged[sel & truth].mean()), 4) if (sel & truth).any() else None,
                "false_alarm_rate": round(float(flagged[sel & ~truth].mean()), 4) if (sel & ~truth).any() else None}

    names = {Path(f.path).name for f in data.files}
    whole = "KDDTest+" if names == {"KDDTest+.txt"} else "files"
    return {whole: figures(keep), f"{whole} difficulty<21" if whole == "files" else "KDDTest-21": figures(hard),
            "recorded_anchors": TAVALLAEE_2009}


def bayes_limit(rows: np.ndarray, attack: np.ndarray) -> dict[str, Any]:
    """How far identical feature vectors with both labels cap any classifier of these rows.

    `ambiguous_share`: rows whose exact vector also occurs with the other label; `error_floor`: the least
    share of rows any classifier gets wrong (each ambiguous vector goes to its majority label);
    `best_worse_recall`: the most that the lower of normal and attack recall can reach — ambiguous
    vectors are given to "attack" in order of their attack share, and the best point is taken.
    These are in-sample bounds: they say what the features cannot tell apart, not what a model learns.
    """
    _, inverse = np.unique(np.ascontiguousarray(rows), axis=0, return_inverse=True)
    inverse = inverse.ravel()
    n_attack = np.bincount(inverse, weights=attack.astype(float))
    n_normal = np.bincount(inverse, weights=(~attack).astype(float))
    both = (n_attack > 0) & (n_normal > 0)
    total_attack, total_normal = float(attack.sum()), float((~attack).sum())
    # start from every ambiguous vector called normal, then move them to attack, most attack-heavy first
    order = np.flatnonzero(both)[np.argsort(-(n_attack[both] / (n_attack[both] + n_normal[both])), kind="stable")]
    caught = total_attack - n_attack[both].sum() + np.concatenate([[0.0], np.cumsum(n_attack[order])])
    kept = total_normal - np.concatenate([[0.0], np.cumsum(n_normal[order])])
    worse = np.minimum(kept / max(total_normal, 1), caught / max(total_attack, 1))
    return {"rows": len(rows), "distinct_vectors": len(n_attack),
            "ambiguous_share": round(float(both[inverse].mean()), 4),
            "error_floor": round(float(np.minimum(n_attack, n_normal)[both].sum() / len(rows)), 4),
            "best_worse_recall": round(float(worse.max()), 4)}
