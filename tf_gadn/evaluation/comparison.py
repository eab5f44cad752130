"""GADN's comparison (Section 5, Figure 4) on a user's own collection: every method and baseline scored by the one
transfer report (tf_gadn.evaluation.transfer_eval) on the same held-out pairs x -> a', as a table, and Figure 4.

Methods arrive as `TransferModel`s (the CLI `python -m tf_gadn.compare` loads trained runs through their method's
registry record); the baselines are built here: the trivial ones of the report (input unchanged, the target
artist's mean image, the nearest training drawing by a') and neural style transfer (tf_gadn.evaluation.neural_style:
one reference drawing, the artist-average Gram, and the colour-preserving variant).
"""

from __future__ import annotations

import csv
import os

import numpy as np

from tf_gadn.data import records
from tf_gadn.evaluation import neural_style, transfer_eval, visualize
from tf_gadn.evaluation.transfer_eval import TransferModel

FIGURE_CONTENTS = 6
FIGURE_ARTISTS = 4
TABLE_KEYS = (
    "transfer_error",
    "style_attribution",
    "style_distance_ratio",
    "content_factor_error_transfer",
    "style_factor_error_transfer",
    "artist_accuracy_on_transfers",
    "fd_transfer",
    "fd_sample",
)
# The same for every row (they measure real images): printed once under the table.
DATA_KEYS = (
    "held_out_split",
    "test_images",
    "content_factor_error_real",
    "style_factor_error_real",
    "artist_accuracy_on_real",
    "chance",
    "fd_real_floor",
)


def baselines(
    data_dir: str,
    image_size: int,
    cache_dir: str,
    neural: bool = True,
    iterations: int = neural_style.ITERATIONS,
) -> dict[str, TransferModel]:
    """The trivial baselines and (with `neural`) the three neural style variants, by table row name."""
    num_artists = len(records.read_artists(data_dir))
    train = transfer_eval.load_split(data_dir, image_size, "train")
    models = {
        f"baseline: {name.replace('_', ' ')}": model
        for name, model in transfer_eval.baseline_models(train, num_artists).items()
    }
    if neural:
        network = neural_style.style_network(cache_dir, train, num_artists)
        single = neural_style.NeuralStyle(network, train, num_artists, "single", iterations)
        mean = neural_style.NeuralStyle(network, train, num_artists, "artist_mean", iterations)
        models["neural style (one drawing)"] = single.transfer_model()
        models["neural style (artist-average Gram)"] = mean.transfer_model()
        models["neural style (one drawing, colours kept)"] = neural_style.colour_preserving(
            single.transfer_model()
        )
    return models


def figure4(
    models: dict[str, TransferModel], data_dir: str, image_size: int, path: str, seed: int = 1
) -> dict:
    """Columns: held-out content images (top row); for each target artist a group of rows, one per method, the
    first row of a group led by two real drawings by that artist. Returns the layout (for the caption)."""
    num_artists = len(records.read_artists(data_dir))
    train = transfer_eval.load_split(data_dir, image_size, "train")
    test, _ = transfer_eval.held_out_split(data_dir, image_size)
    pick = np.random.default_rng([seed, 14]).permutation(len(test["image"]))[:FIGURE_CONTENTS]
    contents, sources = test["image"][pick], test["artist"][pick]
    rows = [[None, None, None, *contents]]
    artists = list(range(min(FIGURE_ARTISTS, num_artists)))
    for artist in artists:
        real = train["image"][train["artist"] == artist][:2]
        for i, model in enumerate(models.values()):
            drawn = model.transfer(contents, sources, np.full(len(contents), artist))
            lead = [real[0], real[1]] if i == 0 else [None, None]
            rows.append([*lead, None, *np.asarray(drawn)])
    visualize.cells_to_png(rows, path, color="rgb")
    return {
        "path": path,
        "target_artists": artists,
        "rows_per_artist": list(models),
        "content_source_artists": sources.tolist(),
    }


def _flat(report: dict, prefix: str = "") -> dict:
    out = {}
    for key, value in report.items():
        if isinstance(value, dict):
            out.update(_flat(value, f"{prefix}{key}/"))
        else:
            out[prefix + key] = value
    return out


def _cell(value) -> str:
    return "-" if value is None else (f"{value:.4f}" if isinstance(value, float) else str(value))


def markdown_table(reports: dict[str, dict]) -> str:
    lines = [
        "| method | " + " | ".join(TABLE_KEYS) + " |",
        "|---|" + "---:|" * len(TABLE_KEYS),
    ]
    for name, numbers in reports.items():
        lines.append(f"| {name} | " + " | ".join(_cell(numbers.get(k)) for k in TABLE_KEYS) + " |")
    first = next(iter(reports.values()))
    lines.append("")
    lines.append(
        "Real images, the same for every row: "
        + ", ".join(f"{k} = {_cell(first.get(k))}" for k in DATA_KEYS if k in first)
    )
    return "\n".join(lines)


def compare(
    models: dict[str, TransferModel],
    data_dir: str,
    image_size: int,
    out_dir: str,
    seed: int = 1,
    figure_models: dict[str, TransferModel] | None = None,
) -> dict:
    """Every transfer number of every model on the same pairs; writes comparison.{json,md,csv} and figure4.png."""
    os.makedirs(out_dir, exist_ok=True)
    reports = {
        name: transfer_eval.report(model, data_dir, image_size, out_dir, seed)
        for name, model in models.items()
    }
    figure = figure4(
        figure_models or models,
        data_dir,
        image_size,
        os.path.join(out_dir, "figure4.png"),
        seed,
    )
    table = markdown_table(reports)
    paths = {
        "json": os.path.join(out_dir, "comparison.json"),
        "markdown": os.path.join(out_dir, "comparison.md"),
        "csv": os.path.join(out_dir, "comparison.csv"),
        "figure": figure["path"],
    }
    records.write_json(paths["json"], {"data_dir": data_dir, "figure4": figure, "reports": reports})
    with open(paths["markdown"], "w", encoding="utf-8") as f:
        f.write(table + "\n\nFigure 4 (" + figure["path"] + "): rows per target artist, in order: ")
        f.write(", ".join(figure["rows_per_artist"]) + "\n")
    flat = {name: _flat(numbers) for name, numbers in reports.items()}
    keys = sorted({k for numbers in flat.values() for k in numbers})
    with open(paths["csv"], "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["method", *keys])
        for name, numbers in flat.items():
            writer.writerow([name, *(numbers.get(k, "") for k in keys)])
    return {"reports": reports, "table": table, "paths": paths}
