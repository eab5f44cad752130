"""Numbers that tell blur from style in a style transfer x -> a' (pure numpy; no model, no data set).

- Style attribution: a transfer is attributed to the target artist when it is nearer (GADN's per-pixel L2) to the
  true rendering of x's content in a' 's style than to the true rendering in x's own artist's style. Blur moves a
  transfer away from both renderings alike, so only style decides the comparison.
- Fréchet distance (Heusel et al. 2017; per target domain as in StarGAN v2) between two sets of features:
  ||mu_1 - mu_2||^2 + tr(C_1 + C_2 - 2 (C_1 C_2)^(1/2)).
- Factor errors: error rate for a categorical factor, RMSE over the factor's spread for a continuous one.
"""

from __future__ import annotations

import numpy as np


def pixel_distances(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """GADN's ||X - Y|| = 1/(hw) sum_ij ||X_ij - Y_ij||_2 per example ([N, H, W, C] -> [N])."""
    diff = np.asarray(x, np.float64) - np.asarray(y, np.float64)
    return np.sqrt(np.sum(diff * diff, axis=-1) + 1e-8).mean(axis=(1, 2))


def style_attribution(
    transfers: np.ndarray, target_truth: np.ndarray, source_truth: np.ndarray
) -> dict:
    """Fraction of transfers nearer to the target artist's rendering than to the source artist's, and the mean
    ratio d(transfer, target) / d(transfer, source) (< 1 means the target style dominates)."""
    to_target = pixel_distances(transfers, target_truth)
    to_source = pixel_distances(transfers, source_truth)
    return {
        "style_attribution": float(np.mean(to_target < to_source)),
        "style_distance_ratio": float(np.mean(to_target / np.maximum(to_source, 1e-8))),
    }


def _sqrt_psd(matrix: np.ndarray) -> np.ndarray:
    values, vectors = np.linalg.eigh((matrix + matrix.T) / 2.0)
    return (vectors * np.sqrt(np.clip(values, 0.0, None))) @ vectors.T


def frechet_distance(features_a: np.ndarray, features_b: np.ndarray) -> float:
    """Fréchet distance between Gaussians fitted to two feature sets [N, D] (0 for identical sets).

    tr((C_a C_b)^(1/2)) = tr((C_a^(1/2) C_b C_a^(1/2))^(1/2)): the symmetric form, so eigh works and no complex
    square root appears."""
    a, b = np.asarray(features_a, np.float64), np.asarray(features_b, np.float64)
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[1] or min(len(a), len(b)) < 2:
        raise ValueError(
            f"need two [N >= 2, D] feature sets of equal D, got {a.shape} and {b.shape}"
        )
    mean_a, mean_b = a.mean(axis=0), b.mean(axis=0)
    cov_a, cov_b = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    root_a = _sqrt_psd(cov_a)
    cross = np.trace(_sqrt_psd(root_a @ cov_b @ root_a))
    return float(np.sum((mean_a - mean_b) ** 2) + np.trace(cov_a) + np.trace(cov_b) - 2.0 * cross)


def factor_error(
    predicted: np.ndarray, truth: np.ndarray, classes: int, spread: float = 1.0
) -> float:
    """Error rate (classes > 0) or RMSE / spread (continuous; spread = the factor's std over real images)."""
    predicted, truth = np.asarray(predicted), np.asarray(truth)
    if classes:
        return float(np.mean(predicted.astype(np.int64) != truth.astype(np.int64)))
    return float(np.sqrt(np.mean((predicted - truth) ** 2)) / max(spread, 1e-8))
