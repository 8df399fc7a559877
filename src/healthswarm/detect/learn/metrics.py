"""Quality figures: per-class precision/recall/F1, macro-F1, confusion matrix, attack-vs-benign F1, ROC-AUC
and the ROC curve (at most `ROC_POINTS` points, for the model card's plot)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from sklearn.metrics import confusion_matrix, f1_score, precision_recall_fscore_support, roc_auc_score, roc_curve

ROC_POINTS = 200


def classification_report(y_true: Sequence[Any] | np.ndarray, y_pred: Sequence[Any] | np.ndarray, benign: str,
                          scores: np.ndarray | None = None, classes: Sequence[str] | None = None) -> dict[str, Any]:
    """Everything `model evaluate` prints. `scores` (higher = more likely attack) adds ROC-AUC."""
    true = np.asarray([str(v) for v in y_true], dtype=object)
    pred = np.asarray([str(v) for v in y_pred], dtype=object)
    labels = sorted(set(classes or ()) | set(true) | set(pred))
    precision, recall, f1, support = precision_recall_fscore_support(true, pred, labels=labels, zero_division=0)
    present = [i for i, label in enumerate(labels) if label in set(true)]
    per_class = {labels[i]: {"precision": float(precision[i]), "recall": float(recall[i]), "f1": float(f1[i]),
                             "support": int(support[i])} for i in range(len(labels))}
    bin_true = true != benign
    bin_pred = pred != benign
    binary: dict[str, Any] = {
        "positive": f"not {benign}",
        "f1": float(f1_score(bin_true, bin_pred, zero_division=0)),
        "precision": float(precision_recall_fscore_support(bin_true, bin_pred, average="binary",
                                                           zero_division=0)[0]),
        "recall": float(precision_recall_fscore_support(bin_true, bin_pred, average="binary", zero_division=0)[1]),
    }
    if scores is not None and 0 < bin_true.sum() < len(bin_true):
        binary["roc_auc"] = float(roc_auc_score(bin_true, scores))
        fpr, tpr, _ = roc_curve(bin_true, scores)
        keep = np.unique(np.linspace(0, len(fpr) - 1, min(len(fpr), ROC_POINTS)).round().astype(int))
        binary["roc_curve"] = {"fpr": [round(float(v), 4) for v in fpr[keep]],
                               "tpr": [round(float(v), 4) for v in tpr[keep]]}
    return {
        "rows": len(true),
        "accuracy": float((true == pred).mean()) if len(true) else 0.0,
        "macro_f1": float(np.mean([f1[i] for i in present])) if present else 0.0,
        "per_class": per_class,
        "binary": binary,
        "confusion": {"labels": labels, "matrix": confusion_matrix(true, pred, labels=labels).tolist()},
    }
