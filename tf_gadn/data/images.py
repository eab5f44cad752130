"""uint8 picture helpers that need no model: the data set's preview and every figure (tf_gadn.evaluation.visualize)
tile their cells with `tile`."""

from __future__ import annotations

import numpy as np


def tile(grid: np.ndarray, gap: int = 2, background: int = 255) -> np.ndarray:
    """[rows, cols, H, W, 3] uint8 -> one (rows*H) x (cols*W) picture with `gap` pixels between cells."""
    rows, cols, h, w, c = grid.shape
    out = np.full(
        (rows * h + (rows - 1) * gap, cols * w + (cols - 1) * gap, c), background, np.uint8
    )
    for r in range(rows):
        for k in range(cols):
            out[r * (h + gap) : r * (h + gap) + h, k * (w + gap) : k * (w + gap) + w] = grid[r, k]
    return out
