"""GADN's figures as the paper draws them (`python -m tf_gadn.figures --model_dir M` writes them).

- Figure 3: one content code, many styles: every artist's style S(a), then new styles drawn from the normal fitted to
  the style table (`common.style_distribution`), "style codes randomly sampled from the style distribution".
- Figure 5 (Appendix B.1): stage-1 reconstructions, one row per artist. Columns: the image; a conventional VAE's
  reconstruction (a run trained with lambda_C1 = 0, `configs/gadn/paper_ablation_vae.flags`); the MLP classifier's
  (B.1 ablation, `stage1_classifier=code`) with the correct style and with the zero style; ours, the same two.
"""

from __future__ import annotations

import os

import numpy as np
import tensorflow as tf

from tf_gadn.evaluation import transfer_eval, visualize
from tf_gadn.gadn import common
from tf_gadn.gadn.stage1 import load_content_stats
from tf_gadn.training import checkpoints

COLUMNS = 7  # Figure 3: 35 images, 7 a row


def figure3(
    networks: dict,
    content_stats: dict,
    num_artists: int,
    path: str,
    random_rows: int = 3,
    seed: int = 0,
) -> str:
    """Rows of COLUMNS: the artists' styles first (at most two rows), then `random_rows` of random styles, all drawn
    with one content code from the fitted content distribution (`seed` picks it and the styles)."""
    rng = np.random.default_rng(seed)
    content = common.normal_sampler(content_stats)(rng, 1)
    artist_styles = networks["style_table"](tf.range(min(num_artists, 2 * COLUMNS)))[0].numpy()
    stats = common.style_distribution(networks["style_table"], num_artists)
    random_styles = common.normal_sampler(stats)(rng, random_rows * COLUMNS)
    rows = []
    for styles in (artist_styles, random_styles):
        images = networks["generator"](
            [
                tf.constant(np.repeat(content, len(styles), axis=0), tf.float32),
                tf.constant(styles, tf.float32),
            ]
        ).numpy()
        rows += [list(images[i : i + COLUMNS]) for i in range(0, len(images), COLUMNS)]
    visualize.cells_to_png(rows, path, color="rgb")
    return path


def reconstruct(networks: dict, images: np.ndarray, artists: np.ndarray, zero_style: bool):
    """G(E(x), S(a)), or G(E(x), 0) with zero_style (mean codes)."""
    content, _ = networks["encoder"](tf.constant(images))
    style, _ = networks["style_table"](tf.constant(artists, tf.int32))
    return networks["generator"]([content, tf.zeros_like(style) if zero_style else style]).numpy()


def figure5(
    images: np.ndarray,
    artists: np.ndarray,
    path: str,
    ours: dict,
    vae: dict | None = None,
    mlp: dict | None = None,
) -> tuple[str, list[str]]:
    """The grid [rows = images, columns as the module docstring says, absent runs left out]; returns the path and the
    column names in order."""
    columns = {"input": images}
    if vae is not None:
        columns["VAE"] = reconstruct(vae, images, artists, zero_style=False)
    for name, networks in (("MLP classifier", mlp), ("ours", ours)):
        if networks is not None:
            columns[f"{name}, correct style"] = reconstruct(networks, images, artists, False)
            columns[f"{name}, zero style"] = reconstruct(networks, images, artists, True)
    visualize.grid_to_png(np.stack(list(columns.values()), axis=1), path)
    return path, list(columns)


def one_image_per_artist(data_dir: str, image_size: int, rows: int) -> tuple:
    """The first training image of each of the first `rows` artists (Figure 5: one row per artist)."""
    train = transfer_eval.load_split(data_dir, image_size, "train")
    artists = np.unique(train["artist"])[:rows]
    first = [int(np.argmax(train["artist"] == a)) for a in artists]
    return train["image"][first], train["artist"][first]


def _same_artists(model_dir: str, artists: list[dict], other_dir: str) -> None:
    _, other = checkpoints.load_run_info(other_dir)
    if [a["name"] for a in other] != [a["name"] for a in artists]:
        raise ValueError(f"{other_dir!r} was trained on other artists than {model_dir!r}")


def write_figures(
    model_dir: str,
    figures=("3", "5"),
    out_dir: str = "",
    vae_model_dir: str = "",
    mlp_model_dir: str = "",
    data_dir: str = "",
    rows: int = 4,
    seed: int = 0,
) -> dict:
    """{figure name: PNG path} for a trained GADN run. Figure 3 uses the run's final networks, Figure 5 its stage-1
    networks (the figure compares stage-1 reconstructions), and those of the control runs, which must share its
    artists."""
    config, artists = checkpoints.load_run_info(model_dir)
    if config.method != "gadn":
        raise ValueError(f"{model_dir!r} is a {config.method!r} run: use python -m tf_gadn.explore")
    out_dir = out_dir or os.path.join(model_dir, "figures")
    written = {}
    for figure in figures:
        if figure == "3":
            written["figure3"] = figure3(
                checkpoints.load_trained(model_dir)[2],
                load_content_stats(model_dir, config.inherit_dir),
                len(artists),
                os.path.join(out_dir, "figure3.png"),
                seed=seed,
            )
        elif figure == "5":
            controls = {}
            for name, other_dir in (("vae", vae_model_dir), ("mlp", mlp_model_dir)):
                if other_dir:
                    _same_artists(model_dir, artists, other_dir)
                    controls[name] = checkpoints.load_trained(other_dir, "gadn_stage1")[2]
            images, labels = one_image_per_artist(
                data_dir or config.data_dir, config.image_size, rows
            )
            stage1 = checkpoints.load_trained(model_dir, "gadn_stage1")[2]
            written["figure5"], _ = figure5(
                images, labels, os.path.join(out_dir, "figure5.png"), stage1, **controls
            )
        else:
            raise ValueError(f"GADN has figures 3 and 5 here, not {figure!r}")
    return written
