"""The federated flow model: a one-hidden-layer numpy MLP whose whole state is a list of arrays.

That list is exactly what Flower ships between server and clients, so every strategy (FedAvg, trimmed
mean, Krum, the DP wrapper) can average, trim, clip and noise it. Random forests, the project's central
flow classifier, have no parameters to average; this model is the federated counterpart, and the bench
trains the same model centrally so the comparison is like for like.

Features go through the project's `FeatureSpec` with a vocabulary fixed in advance (not learned from any
organisation's rows): every numeric CICFlowMeter column as a signed log1p(|x|)/10 (the counts and rates
span ten orders of magnitude; a data-independent transform means no organisation has to publish its
means and variances for a shared standardisation) and `Protocol` one-hot over TCP, UDP and other.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from healthswarm.detect.learn.datasets import cicflowmeter
from healthswarm.detect.learn.features import FeatureSpec
from healthswarm.detect.learn.table import Table

NDArrays = list[np.ndarray]
#: IP protocol numbers with their own one-hot column; every other protocol shares the last one
PROTOCOLS = ("6", "17")
SPEC = FeatureSpec(list(cicflowmeter.NUMERIC), {"Protocol": list(PROTOCOLS)})
INPUTS = len(cicflowmeter.NUMERIC) + len(PROTOCOLS) + 1


def encode_flows(table: Table) -> np.ndarray:
    """CICFlowMeter rows → the model's float64 matrix (FeatureSpec checks: missing columns, NaN/inf)."""
    raw = SPEC.encode(table, unseen="other")  # unseen protocol → code -1 → the "other" column
    n_numeric = len(SPEC.numeric)
    numeric = raw[:, :n_numeric]
    codes = raw[:, n_numeric].astype(np.int64)
    onehot = np.zeros((len(raw), len(PROTOCOLS) + 1))
    onehot[np.arange(len(raw)), np.where(codes < 0, len(PROTOCOLS), codes)] = 1.0
    return np.hstack([np.sign(numeric) * np.log1p(np.abs(numeric)) / 10.0, onehot])


@dataclass(frozen=True, slots=True)
class Architecture:
    inputs: int
    hidden: int
    classes: int

    @property
    def shapes(self) -> list[tuple[int, ...]]:
        return [(self.inputs, self.hidden), (self.hidden,), (self.hidden, self.classes), (self.classes,)]


@dataclass(frozen=True, slots=True)
class TrainSettings:
    """Local training: Adam on mini-batches, with fresh optimiser state each round (nothing but the
    parameters survives between rounds, so a client keeps no hidden state the server cannot see)."""

    epochs: int = 1
    batch_size: int = 64
    learning_rate: float = 3e-3


def init_parameters(arch: Architecture, seed: int) -> NDArrays:
    rng = np.random.default_rng(seed)
    return [rng.normal(0.0, np.sqrt(2.0 / arch.inputs), (arch.inputs, arch.hidden)), np.zeros(arch.hidden),
            rng.normal(0.0, np.sqrt(1.0 / arch.hidden), (arch.hidden, arch.classes)), np.zeros(arch.classes)]


def check_parameters(params: NDArrays, arch: Architecture) -> str | None:
    """Why these parameters cannot be this model's (wrong count, shape, NaN/inf), or None when they can."""
    if len(params) != len(arch.shapes):
        return f"{len(params)} arrays, expected {len(arch.shapes)}"
    for i, (array, shape) in enumerate(zip(params, arch.shapes, strict=True)):
        if tuple(array.shape) != shape:
            return f"array {i} has shape {tuple(array.shape)}, expected {shape}"
        if not np.isfinite(array).all():
            return f"array {i} holds NaN or infinite values"
    return None


def _forward(params: NDArrays, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    w1, b1, w2, b2 = params
    hidden = np.maximum(X @ w1 + b1, 0.0)
    logits = hidden @ w2 + b2
    logits -= logits.max(axis=1, keepdims=True)
    proba = np.exp(logits)
    proba /= proba.sum(axis=1, keepdims=True)
    return hidden, proba


def predict_proba(params: NDArrays, X: np.ndarray) -> np.ndarray:
    return _forward(params, X)[1]


def log_loss(params: NDArrays, X: np.ndarray, y: np.ndarray) -> float:
    proba = predict_proba(params, X)
    return float(-np.mean(np.log(proba[np.arange(len(y)), y] + 1e-12)))


def train(params: NDArrays, X: np.ndarray, y: np.ndarray, settings: TrainSettings, seed: int) -> NDArrays:
    """New parameters after `settings.epochs` passes of Adam over (X, y), class indices in y."""
    if len(X) == 0:
        raise ValueError("no rows to train on")
    rng = np.random.default_rng(seed)
    out = [p.astype(np.float64, copy=True) for p in params]
    m = [np.zeros_like(p) for p in out]
    v = [np.zeros_like(p) for p in out]
    beta1, beta2, eps, step = 0.9, 0.999, 1e-8, 0
    n_classes = out[3].shape[0]
    for _ in range(settings.epochs):
        order = rng.permutation(len(X))
        for start in range(0, len(X), settings.batch_size):
            batch = order[start:start + settings.batch_size]
            xb, yb = X[batch], y[batch]
            hidden, proba = _forward(out, xb)
            d_logits = proba - np.eye(n_classes)[yb]
            d_logits /= len(batch)
            d_hidden = (d_logits @ out[2].T) * (hidden > 0)
            grads = [xb.T @ d_hidden, d_hidden.sum(axis=0), hidden.T @ d_logits, d_logits.sum(axis=0)]
            step += 1
            for k, g in enumerate(grads):
                m[k] = beta1 * m[k] + (1 - beta1) * g
                v[k] = beta2 * v[k] + (1 - beta2) * g * g
                m_hat = m[k] / (1 - beta1 ** step)
                v_hat = v[k] / (1 - beta2 ** step)
                out[k] -= settings.learning_rate * m_hat / (np.sqrt(v_hat) + eps)
    return out
