"""Linear probes: how much of a factor (artist, hair colour, ...) can be read off features (pixels, codes).

Used by the evaluations of both papers on synthetic data, where the true factors are known: artist predictability
from GADN's content code E(x) (should fall toward chance), factor accuracy of transferred images, and the style-space
four-way check (style code -> style factors, content code -> content factors, and not the other way round).
Closed-form ridge regression on standardised features: deterministic, no training loop, fast on a CPU.
"""

from __future__ import annotations

import dataclasses

import numpy as np


@dataclasses.dataclass(frozen=True)
class LinearProbe:
    mean: np.ndarray
    scale: np.ndarray
    weights: np.ndarray  # [features + 1, outputs]
    num_classes: int  # 0 = regression

    def raw(self, features: np.ndarray) -> np.ndarray:
        z = (np.asarray(features, np.float64).reshape(len(features), -1) - self.mean) / self.scale
        return np.concatenate([z, np.ones((len(z), 1))], axis=1) @ self.weights

    def predict(self, features: np.ndarray) -> np.ndarray:
        out = self.raw(features)
        return out.argmax(axis=1) if self.num_classes else out[:, 0]


def fit(
    features: np.ndarray, targets: np.ndarray, num_classes: int = 0, l2: float = 1.0
) -> LinearProbe:
    """Ridge regression onto one-hot targets (classification) or the target itself (num_classes = 0)."""
    x = np.asarray(features, np.float64).reshape(len(features), -1)
    mean, scale = x.mean(axis=0), x.std(axis=0) + 1e-6
    z = np.concatenate([(x - mean) / scale, np.ones((len(x), 1))], axis=1)
    t = np.asarray(targets)
    y = (
        np.eye(num_classes)[t.astype(np.int64)]
        if num_classes
        else t.reshape(-1, 1).astype(np.float64)
    )
    regulariser = l2 * np.eye(z.shape[1])
    regulariser[-1, -1] = 0.0  # the bias is not shrunk
    if z.shape[1] <= len(z):
        weights = np.linalg.solve(z.T @ z + regulariser, z.T @ y)
    else:  # more features than examples: the dual form is the cheaper solve
        weights = z.T @ np.linalg.solve(z @ z.T + l2 * np.eye(len(z)), y)
    return LinearProbe(mean, scale, weights, num_classes)


def score(probe: LinearProbe, features: np.ndarray, targets: np.ndarray) -> float:
    """Top-1 accuracy for a classifier probe, R^2 for a regression probe."""
    predicted = probe.predict(features)
    targets = np.asarray(targets)
    if probe.num_classes:
        return float(np.mean(predicted == targets.astype(np.int64)))
    residual = np.sum((predicted - targets) ** 2)
    total = np.sum((targets - targets.mean()) ** 2) + 1e-12
    return float(1.0 - residual / total)


def split_score(
    features: np.ndarray,
    targets: np.ndarray,
    num_classes: int = 0,
    test_fraction: float = 0.3,
    seed: int = 0,
    l2: float = 1.0,
) -> float:
    """Fits on a random (1 - test_fraction) of the rows and scores on the rest."""
    order = np.random.default_rng(seed).permutation(len(features))
    cut = int(round(len(order) * (1 - test_fraction)))
    train, test = order[:cut], order[cut:]
    probe = fit(np.asarray(features)[train], np.asarray(targets)[train], num_classes, l2)
    return score(probe, np.asarray(features)[test], np.asarray(targets)[test])


def downsample(images: np.ndarray, size: int = 8) -> np.ndarray:
    """[N, S, S, C] -> [N, size*size*C] block means: a pixel feature that ignores fine detail."""
    n, s, _, c = images.shape
    k = s // size
    return (
        np.asarray(images, np.float64)[:, : k * size, : k * size]
        .reshape(n, size, k, size, k, c)
        .mean(axis=(2, 4))
        .reshape(n, -1)
    )
