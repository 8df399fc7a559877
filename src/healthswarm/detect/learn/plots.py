"""Plots of evaluation results: confusion matrices and ROC curves (matplotlib, no display needed; the file
suffix picks the format: PNG for the bench, SVG for the model card).

`card_plots` writes a model folder's `confusion.svg` and `roc.svg` from a `metrics.classification_report`
(the dashboard shows exactly those files); `model train` and `model evaluate` call it.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
from sklearn.metrics import auc, roc_curve


def confusion_plot(report: Mapping[str, Any], path: Path, title: str) -> Path:
    """Row-normalised confusion matrix with counts, from a `metrics.classification_report`."""
    labels = report["confusion"]["labels"]
    counts = np.asarray(report["confusion"]["matrix"], dtype=float)
    share = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)
    size = max(5.0, 0.55 * len(labels) + 2)
    fig, ax = plt.subplots(figsize=(size + 1, size))
    image = ax.imshow(share, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(len(labels)), labels, rotation=60, ha="right", fontsize=8)
    ax.set_yticks(range(len(labels)), labels, fontsize=8)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    for i in range(len(labels)):
        for j in range(len(labels)):
            if counts[i, j]:
                ax.text(j, i, f"{int(counts[i, j])}", ha="center", va="center", fontsize=7,
                        color="white" if share[i, j] > 0.6 else "black")
    ax.set_title(f"{title}\nmacro-F1 {report['macro_f1']:.3f}, attack-vs-benign F1 {report['binary']['f1']:.4f}",
                 fontsize=10)
    fig.colorbar(image, ax=ax, fraction=0.04, label="share of true class")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def roc_plot(curves: Mapping[str, tuple[np.ndarray, np.ndarray]], path: Path, title: str) -> Path:
    """ROC curves: name → (is_attack, score)."""
    points = {}
    for name, (truth, score) in curves.items():
        if 0 < truth.sum() < len(truth):
            fpr, tpr, _ = roc_curve(truth, score)
            points[name] = (fpr, tpr)
    return _roc(points, path, title)


def _roc(points: Mapping[str, tuple[np.ndarray, np.ndarray]], path: Path, title: str) -> Path:
    fig, ax = plt.subplots(figsize=(5.5, 5))
    for name, (fpr, tpr) in points.items():
        ax.plot(fpr, tpr, label=f"{name} (AUC {auc(fpr, tpr):.3f})")
    ax.plot([0, 1], [0, 1], color="grey", linestyle=":", linewidth=1)
    ax.set_xlabel("false positive rate")
    ax.set_ylabel("true positive rate")
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


CONFUSION_SVG, ROC_SVG = "confusion.svg", "roc.svg"


def card_plots(report: Mapping[str, Any], folder: Path, title: str) -> list[Path]:
    """The model folder's confusion matrix and ROC curve as SVG; a ROC plot only when the report has a
    curve (rows of both kinds and scores), else an older one is removed rather than left to mislead."""
    with plt.rc_context({"svg.fonttype": "none", "svg.hashsalt": "healthswarm"}):  # text as text; stable ids
        out = [confusion_plot(report, folder / CONFUSION_SVG, title)]
        curve = report["binary"].get("roc_curve")
        roc = folder / ROC_SVG
        if curve:
            out.append(_roc({"attack vs benign": (np.asarray(curve["fpr"]), np.asarray(curve["tpr"]))}, roc, title))
        else:
            roc.unlink(missing_ok=True)
    return out
