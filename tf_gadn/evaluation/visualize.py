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
from tf_gadn.data import records
from tf_gadn.data.images import tile  # noqa: F401  (part of this module's API: grids are tiled here)


def to_uint8_rgb(images, color: str = "rgb") -> np.ndarray:
    """Model-space images in [-1, 1] (RGB or normalised Lab) -> uint8 RGB."""
    rgb = colorspace.to_rgb_m11(tf.convert_to_tensor(images, tf.float32), color)
    return np.asarray(tf.clip_by_value((rgb + 1.0) * 127.5 + 0.5, 0, 255)).astype(np.uint8)


def save_png(path: str, image: np.ndarray) -> str:
    """Atomic PNG write (a viewer never sees half a file)."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with records.atomic_file(path, ".png") as tmp:
        Image.fromarray(image).save(tmp)
    return path


def grid_to_png(grid, path: str, color: str = "rgb") -> np.ndarray:
    """Writes a [rows, cols, H, W, 3] model-space grid as a PNG; returns the tiled uint8 picture."""
    grid = np.asarray(grid)
    picture = tile(to_uint8_rgb(grid, color))
    save_png(path, picture)
    return picture


_PALETTE = [
    (31, 119, 180),
    (214, 39, 40),
    (44, 160, 44),
    (255, 127, 14),
    (148, 103, 189),
    (140, 86, 75),
]


def _ticks(low: float, high: float, log: bool, count: int = 5) -> list[float]:
    if log:
        return [2.0**e for e in range(math.floor(math.log2(low)), math.ceil(math.log2(high)) + 1)]
    return list(np.linspace(low, high, count))


def line_plot_png(
    curves: dict,
    path: str,
    x_label: str,
    y_label: str,
    log_x: bool = False,
    title: str = "",
    size: tuple[int, int] = (640, 420),
) -> np.ndarray:
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


# ---- style-space exploration (style-space paper Figures 3-7) -------------------------------------------------------
# Each figure takes `generate(u, v, w) -> [N, S, S, 3]` model-space images (u: normalised style, v: content, w: noise
# rows), so these functions know nothing about checkpoints; tf_gadn.explore loads a run and calls them.
SWEEP_VALUES = (-5.0, 0.0, 5.0)  # Section 6.3: "We set the value to -5, 0 and 5"


def cells_to_png(cells, path: str, color: str = "lab") -> np.ndarray:
    """Rows of model-space images [S, S, 3] (None = a blank white cell; rows may be short) -> one tiled PNG."""
    filled = [
        (r, k, cell)
        for r, row in enumerate(cells)
        for k, cell in enumerate(row)
        if cell is not None
    ]
    if not filled:
        raise ValueError("a figure needs at least one image")
    rgb = to_uint8_rgb(np.stack([cell for _, _, cell in filled]), color)
    grid = np.full((len(cells), max(len(row) for row in cells)) + rgb.shape[1:], 255, np.uint8)
    for (r, k, _), image in zip(filled, rgb):
        grid[r, k] = image
    picture = tile(grid)
    save_png(path, picture)
    return picture


def bilinear_styles(corners, steps: int) -> np.ndarray:
    """[4, d] styles (top-left, top-right, bottom-left, bottom-right) -> [steps, steps, d] bilinear (Figure 3 right)."""
    top_left, top_right, bottom_left, bottom_right = np.asarray(corners, np.float32)
    a = np.linspace(0.0, 1.0, steps, dtype=np.float32)
    rows, cols = a[:, None, None], a[None, :, None]
    return (1 - rows) * ((1 - cols) * top_left + cols * top_right) + rows * (
        (1 - cols) * bottom_left + cols * bottom_right
    )


def sweep_dimension(codes, dim: int, values=SWEEP_VALUES) -> np.ndarray:
    """[n, d] codes -> [n, len(values), d]: dimension `dim` set to each value, every other dimension unchanged."""
    codes = np.asarray(codes, np.float32)
    if not 0 <= dim < codes.shape[-1]:
        raise ValueError(f"style dimension {dim} is not in [0, {codes.shape[-1]})")
    swept = np.repeat(codes[:, None], len(values), axis=1)
    swept[:, :, dim] = np.asarray(values, np.float32)
    return swept


def extreme_indices(
    scores, count: int, fraction: float = 0.1, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """`count` indices drawn from the lowest and from the highest `fraction` of `scores` (Figures 4-5, last row),
    each ordered by score."""
    scores = np.asarray(scores)
    order = np.argsort(scores, kind="stable")
    pool = max(count, int(math.ceil(fraction * len(scores))))
    if 2 * pool > len(scores):
        raise ValueError(
            f"{len(scores)} images are too few to pick {count} from each {fraction:.0%} tail"
        )
    rng = np.random.default_rng(seed)
    low = np.sort(rng.choice(pool, count, replace=False))
    high = np.sort(rng.choice(pool, count, replace=False)) + len(scores) - pool
    return order[low], order[high]


def random_styles_figure(
    generate, content, noise, styles, path: str, columns: int = 6, color: str = "lab"
) -> np.ndarray:
    """Figure 3 left: one content code v and noise w, a style u from `styles` in every cell, `columns` a row."""
    styles = np.asarray(styles, np.float32)
    images = generate(
        styles,
        np.repeat(np.asarray(content)[None], len(styles), 0),
        np.repeat(np.asarray(noise)[None], len(styles), 0),
    )
    return cells_to_png(
        [list(images[i : i + columns]) for i in range(0, len(images), columns)], path, color
    )


def interpolation_figure(
    generate, content, noise, corner_styles, path: str, steps: int = 5, color: str = "lab"
) -> np.ndarray:
    """Figure 3 right: fixed content and noise; styles bilinearly interpolated between the four corner styles."""
    grid = bilinear_styles(corner_styles, steps).reshape(steps * steps, -1)
    return random_styles_figure(generate, content, noise, grid, path, steps, color)


def dimension_sweep_figure(
    generate,
    codes,
    dim: int,
    low_images,
    high_images,
    path: str,
    values=SWEEP_VALUES,
    groups_per_row: int = 2,
    color: str = "lab",
) -> np.ndarray:
    """Figures 4-5: each group is one random code (u, v, w) with u[dim] set to -5, 0, +5, `groups_per_row` groups a
    row; the last row: training images ranked lowest on `dim` (left) and highest (right)."""
    u, v, w = (np.asarray(c, np.float32) for c in codes)
    swept = sweep_dimension(u, dim, values)  # [n, len(values), d_style]
    k = len(values)
    images = generate(swept.reshape(-1, u.shape[-1]), np.repeat(v, k, 0), np.repeat(w, k, 0))
    per_row = groups_per_row * k
    cells = [list(images[i : i + per_row]) for i in range(0, len(images), per_row)]
    cells.append(list(low_images) + list(high_images))
    return cells_to_png(cells, path, color)


def reconstruction_figure(
    images, reconstructions, path: str, pairs_per_row: int = 4, color: str = "lab"
) -> np.ndarray:
    """Figure 6: pairs (image, reconstruction G(u(x), v(x), 0)), `pairs_per_row` pairs a row."""
    cells = [cell for pair in zip(images, reconstructions) for cell in pair]
    step = 2 * pairs_per_row
    return cells_to_png([cells[i : i + step] for i in range(0, len(cells), step)], path, color)


def style_transfer_figure(
    content_images, style_images, transfers, path: str, color: str = "lab"
) -> np.ndarray:
    """Figure 7 as a grid: transfers [n_content, n_style, S, S, 3]; header row = style sources, header column = content
    sources, top-left blank."""
    cells = [[None] + list(style_images)]
    cells += [[content] + list(row) for content, row in zip(content_images, transfers)]
    return cells_to_png(cells, path, color)
