"""Pictures people look at instead of reading numbers: image grids (rows x columns), written as PNG.

Sample grids of every stage (rows = contents, columns = styles/artists) go through `grid_to_png`; the style-space
exploration figures (random styles, interpolation, dimension sweeps; style-space Figures 3-7) build on `tile`;
curves (pruning, style-space Figure 1) go through `line_plot_png`, drawn with PIL so no plotting library is needed.
"""
from __future__ import annotations

import math
import os

import numpy as np
import tensorflow as tf
from PIL import Image, ImageDraw

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


_PALETTE = [(31, 119, 180), (214, 39, 40), (44, 160, 44), (255, 127, 14), (148, 103, 189), (140, 86, 75)]


def _ticks(low: float, high: float, log: bool, count: int = 5) -> list[float]:
    if log:
        return [2.0 ** e for e in range(math.floor(math.log2(low)), math.ceil(math.log2(high)) + 1)]
    return list(np.linspace(low, high, count))


def line_plot_png(curves: dict, path: str, x_label: str, y_label: str, log_x: bool = False, title: str = "",
                  size: tuple[int, int] = (640, 420)) -> np.ndarray:
    """Writes a line chart of {name: (xs, ys)} as a PNG (log2 x axis when log_x); returns the uint8 picture."""
    if not curves:
        raise ValueError("line_plot_png needs at least one curve")
    xs_all = np.concatenate([np.asarray(xs, float) for xs, _ in curves.values()])
    ys_all = np.concatenate([np.asarray(ys, float) for _, ys in curves.values()])
    if log_x and (xs_all <= 0).any():
        raise ValueError("log_x needs positive x values")
    fx = np.log2 if log_x else (lambda v: np.asarray(v, float))
    x_low, x_high = float(fx(xs_all.min())), float(fx(xs_all.max()))
    y_low, y_high = float(np.nanmin(ys_all)), float(np.nanmax(ys_all))
    x_high, y_high = max(x_high, x_low + 1e-9), max(y_high, y_low + 1e-9)
    width, height = size
    left, right, top, bottom = 70, 20, 30, 50
    image = Image.new("RGB", size, "white")
    draw = ImageDraw.Draw(image)

    def to_px(x, y):
        u = left + (fx(x) - x_low) / (x_high - x_low) * (width - left - right)
        v = height - bottom - (y - y_low) / (y_high - y_low) * (height - top - bottom)
        return float(u), float(v)

    draw.rectangle([left, top, width - right, height - bottom], outline="black")
    for x in _ticks(float(xs_all.min()), float(xs_all.max()), log_x):
        u, _ = to_px(x, y_low)
        if left - 1 <= u <= width - right + 1:
            draw.line([u, height - bottom, u, height - bottom + 4], fill="black")
            draw.text((u - 8, height - bottom + 6), f"{x:g}", fill="black")
    for y in _ticks(y_low, y_high, False):
        _, v = to_px(float(xs_all.min()), y)
        draw.line([left - 4, v, left, v], fill="black")
        draw.text((4, v - 6), f"{y:.3g}", fill="black")
    for k, (name, (xs, ys)) in enumerate(curves.items()):
        colour = _PALETTE[k % len(_PALETTE)]
        points = [to_px(x, y) for x, y in zip(xs, ys)]
        if len(points) > 1:
            draw.line(points, fill=colour, width=2)
        for u, v in points:
            draw.ellipse([u - 3, v - 3, u + 3, v + 3], fill=colour)
        draw.text((left + 10, top + 6 + 14 * k), f"- {name}", fill=colour)
    draw.text((width // 2 - 4 * len(x_label), height - 20), x_label, fill="black")
    draw.text((left, 8), f"{title}   ({y_label})" if title else y_label, fill="black")
    picture = np.asarray(image)
    save_png(path, picture)
    return picture
