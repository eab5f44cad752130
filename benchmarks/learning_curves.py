"""Plots runs' transfer-metric curves (written by --eval_every into <stage>/metrics.csv) as PNGs, runs overlaid.

    python benchmarks/learning_curves.py docs/gadn_long runs/gadn_long runs/gadn_long_cap

Stages follow each other on one step axis (stage 2's steps start where stage 1's end). Three charts: pixel error with
its input-unchanged baseline, style attribution, and the pooled Fréchet distance.
"""

from __future__ import annotations

import csv
import os
import sys

from tf_gadn.evaluation import visualize

STAGE_ORDER = ("gadn_stage1", "gadn_stage2", "style_encoder", "content_vae", "cond_gan")
CHARTS = {
    "error": ("transfer_error", "baseline_input_unchanged"),
    "attribution": ("style_attribution",),
    "fd": ("fd_pooled",),
}


def read_curves(model_dir: str) -> dict[str, tuple[list, list]]:
    curves: dict[str, tuple[list, list]] = {}
    offset = 0
    for stage in STAGE_ORDER:
        path = os.path.join(model_dir, stage, "metrics.csv")
        if not os.path.exists(path):
            continue
        with open(path, encoding="utf-8") as f:
            rows = list(csv.DictReader(f))
        for row in rows:
            for key, value in row.items():
                if key != "step":
                    xs, ys = curves.setdefault(f"{stage}/{key}", ([], []))
                    xs.append(offset + int(row["step"]))
                    ys.append(float(value))
        offset += int(rows[-1]["step"]) if rows else 0
    return curves


def main(prefix: str, model_dirs: list[str]) -> None:
    curves = {
        f"{os.path.basename(d.rstrip('/'))}:{name}": xy
        for d in model_dirs
        for name, xy in read_curves(d).items()
    }
    for chart, keys in CHARTS.items():
        chosen = {name: xy for name, xy in curves.items() if name.rsplit("/", 1)[1] in keys}
        if chosen:
            path = f"{prefix}_{chart}.png"
            visualize.line_plot_png(chosen, path, "training step (stages one after another)", chart)
            print(path)


if __name__ == "__main__":
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    main(sys.argv[1], sys.argv[2:])
