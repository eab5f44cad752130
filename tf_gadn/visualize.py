"""Pictures people look at instead of reading numbers: image grids (rows x columns), written as PNG.

Sample grids of every stage (rows = contents, columns = styles/artists) go through `grid_to_png`; the style-space
exploration figures (random styles, interpolation, dimension sweeps; style-space Figures 3-7) build on `tile`.
"""
from __future__ import annotations

import os

import numpy as np
import tensorflow as tf
from PIL import Image

from tf_gadn.data import color as colorspace


def to_uint8_rgb(images, color: str = "rgb") -> np.ndarray:
    """Model-space images in [-1, 1] (RGB or normalised Lab) -> uint8 RGB."""
    rgb = colorspace.to_rgb_m11(tf.convert_to_tensor(images, tf.float32), color)
    return np.asarray(tf.clip_by_value((rgb + 1.0) * 127.5 + 0.5, 0, 255)).astype(np.uint8)


def tile(grid: np.ndarray, gap: int = 2, background: int = 255) -> np.ndarray:
    """[rows, cols, H, W, 3] uint8 -> one (rows*H) x (cols*W) picture with `gap` pixels between cells."""
    rows, cols, h, w, c = grid.shape
    out = np.full((rows * h + (rows - 1) * gap, cols * w + (cols - 1) * gap, c), background, np.uint8)
    for r in range(rows):
        for k in range(cols):
            out[r * (h + gap):r * (h + gap) + h, k * (w + gap):k * (w + gap) + w] = grid[r, k]
    return out


def save_png(path: str, image: np.ndarray) -> str:
    """Atomic PNG write (a viewer never sees half a file)."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    tmp = path + ".tmp.png"
    Image.fromarray(image).save(tmp)
    os.replace(tmp, path)
    return path


def grid_to_png(grid, path: str, color: str = "rgb") -> np.ndarray:
    """Writes a [rows, cols, H, W, 3] model-space grid as a PNG; returns the tiled uint8 picture."""
    grid = np.asarray(grid)
    picture = tile(to_uint8_rgb(grid, color))
    save_png(path, picture)
    return picture
