"""`python -m tf_gadn.evaluate_style_space --model_dir M`: does the style code hold style and the content code content?

On synthetic data the true factors of every image are known (tf_gadn.data.synthetic): per-artist style factors and
per-image content factors. Linear probes (tf_gadn.evaluation.probes) are fitted on the train split from each code to each
factor and scored on the test split (or a held-out 30% of train). Four numbers, the issue's check of Section 6.2's
claim: style code -> style factors and content code -> content factors should be high, the two crossings low.
Each number is the mean over factors of a chance-corrected score: R^2 for a continuous factor, and
(accuracy - majority-class accuracy) / (1 - majority-class accuracy) for a categorical one: 0 = chance, 1 = perfect.
Also: artist accuracy from each code, and the transfer error (per-pixel L2, GADN's distance, in RGB) of a style taken
from images of an artist held out of training against its true rendering, next to seen artists and to the input.
"""

from __future__ import annotations

import dataclasses
import os

import numpy as np
import tensorflow as tf

from tf_gadn import losses
from tf_gadn.data import color as colorspace
from tf_gadn.data import records, synthetic
from tf_gadn.evaluation import probes, transfer_eval
from tf_gadn.style_space import explore
from tf_gadn.style_space.common import StyleSpace, load_style_space

MAX_IMAGES = 4096
TRANSFER_IMAGES = 64
HELD_OUT_ARTISTS = 8  # unseen artists the reference-guided transfer is scored on
CODES = ("style_code", "content_code")
FACTORS = ("style_factors", "content_factors")


def encode_split(space: StyleSpace, split: str, max_images: int = MAX_IMAGES) -> dict:
    """u, v, artists and both factor vectors of a split's first `max_images` images."""
    encoded = explore.training_images(space.config, max_images, with_factors=True, split=split)
    encoded["style_code"], encoded["content_code"] = (
        space.style(encoded["image"]),
        space.content(encoded["image"]),
    )
    return encoded


def factor_score(train_x, train_y, test_x, test_y, classes: int) -> float | None:
    """Chance-corrected probe score of one factor (see module docstring); None when the factor does not vary."""
    if classes:
        train_y, test_y = train_y.astype(np.int64), test_y.astype(np.int64)
        majority = np.bincount(train_y, minlength=classes).argmax()
        chance = float(np.mean(test_y == majority))
        if chance > 0.999 or len(np.unique(train_y)) < 2:
            return None
        accuracy = probes.score(probes.fit(train_x, train_y, classes), test_x, test_y)
        return (accuracy - chance) / (1.0 - chance)
    if np.std(train_y) < 1e-9 or np.std(test_y) < 1e-9:
        return None
    return probes.score(probes.fit(train_x, train_y), test_x, test_y)


def probe_table(train: dict, test: dict, info: dict) -> dict:
    """{"style_code->style_factors": mean score, ...} for the four pairs, plus per-factor scores."""
    table, per_factor = {}, {}
    for code in CODES:
        for factors in FACTORS:
            kind = factors.split("_")[0]
            names, classes = info[f"{kind}_factors"], info[f"{kind}_classes"]
            scores = {
                name: factor_score(
                    train[code], train[factors][:, k], test[code], test[factors][:, k], c
                )
                for k, (name, c) in enumerate(zip(names, classes))
            }
            scores = {name: s for name, s in scores.items() if s is not None}
            key = f"{code}->{factors}"
            table[key] = float(np.mean(list(scores.values()))) if scores else None
            per_factor[key] = scores
    return {"four_numbers": table, "per_factor": per_factor}


def rgb(images) -> tf.Tensor:
    return colorspace.to_rgb_m11(tf.constant(images, tf.float32), "lab")


def pixel_error(x, y) -> float:
    """GADN's per-pixel L2 distance, in RGB [-1, 1] (the same units as tf_gadn.evaluate's transfer error)."""
    return float(np.mean(losses.pixel_distance(rgb(x), rgb(y)).numpy()))


def held_out_transfer(
    space: StyleSpace,
    images,
    content_factors,
    info: dict,
    num_artists: int,
    held_out_artists: int = HELD_OUT_ARTISTS,
) -> dict:
    """Contents of `images` drawn in the style of (a) artists never seen in training, (b) a seen artist, each style
    taken from that artist's drawings alone; scored against the true renderings. One unseen artist is one sample of
    a style space's reach (on the 40-artist unseen collection it decided pass or fail), so the bar is the mean over
    `held_out_artists` of them (data-set artists num_artists, num_artists + 1, ...), next to the same artists' "input
    unchanged" baseline and the share of them the transfer beats it on."""
    contents = [synthetic.content_from_vector(f) for f in content_factors]
    family = info.get("family", "portraits")
    image_size = space.config.image_size
    seen = explore.held_out_artist(info["seed"], 0, image_size, contents, salt=4243, family=family)
    v = space.content(images)

    def transfer(drawings):
        u = space.style(drawings).mean(axis=0, keepdims=True)
        return space.generate(np.repeat(u, len(v), axis=0), v)

    errors, inputs = [], []
    for artist in range(num_artists, num_artists + held_out_artists):
        held_out = explore.held_out_artist(
            info["seed"], artist, image_size, contents, family=family
        )
        errors.append(pixel_error(transfer(held_out["images"]), held_out["truth"]))
        inputs.append(pixel_error(images, held_out["truth"]))
    return {
        "transfer_error_held_out_artist": errors[0],
        "baseline_input_unchanged_held_out": inputs[0],
        f"transfer_error_held_out_artists_mean_of_{held_out_artists}": float(np.mean(errors)),
        f"baseline_input_unchanged_held_out_mean_of_{held_out_artists}": float(np.mean(inputs)),
        "held_out_artists_beating_input": float(np.mean(np.array(errors) < np.array(inputs))),
        "transfer_error_seen_artist_0": pixel_error(transfer(seen["images"]), seen["truth"]),
    }


def transfer_model(space: StyleSpace, artist_styles: np.ndarray) -> transfer_eval.TransferModel:
    """The style space as the shared transfer report sees it (RGB in and out): x -> G(u_a', v(x), 0), with u_a' the
    mean style code of a' 's training drawings (reference-guided); samples G(u_a', v ~ N(0, I), 0) (latent-guided)."""

    def transfer(images, source_artists, target_artists):
        del source_artists  # the style comes from the target's drawings alone
        v = space.content(colorspace.to_model_space(tf.constant(images, tf.float32), "lab").numpy())
        return rgb(space.generate(artist_styles[target_artists], v)).numpy()

    def sample(target_artists, rng):
        v = rng.standard_normal((len(target_artists), space.config.d_content)).astype(np.float32)
        return rgb(space.generate(artist_styles[target_artists], v)).numpy()

    return transfer_eval.TransferModel(transfer, sample)


def artist_styles(space: StyleSpace, train: dict, num_artists: int) -> np.ndarray:
    """Each artist's mean style code over its training images (what a user's reference drawings would give)."""
    return np.stack(
        [train["style_code"][train["artist"] == a].mean(axis=0) for a in range(num_artists)]
    )


def run_transfer_model(model_dir: str, data_dir: str = "") -> transfer_eval.TransferModel:
    """A trained style space as `transfer_eval.TransferModel` on `data_dir` (this method's `Method.transfer`).

    Reference-guided, as the method is meant to be used: each artist's style is the mean code of that artist's
    training drawings in `data_dir`, so the run need not have seen those artists (or may have seen more)."""
    space = load_style_space(model_dir)
    if data_dir:
        space = dataclasses.replace(space, config=space.config.replace(data_dir=data_dir))
    train = encode_split(space, "train")
    return transfer_model(
        space, artist_styles(space, train, len(records.read_artists(space.config.data_dir)))
    )


def evaluate(model_dir: str, out_dir: str = "") -> dict:
    """The style-space report (JSON in out_dir, default MODEL_DIR/eval); synthetic data sets only."""
    space = load_style_space(model_dir)
    data_dir = space.config.data_dir
    info = records.read_dataset_info(data_dir)
    if info.get("source") != "synthetic" or not info.get("style_factors"):
        raise ValueError(
            f"{data_dir!r} is not a synthetic data set: the probes need the true factors"
        )
    artists = records.read_artists(data_dir)
    train = encode_split(space, "train")
    if any(a.get("test_count") for a in artists):
        test = encode_split(space, "test")
        held = "test split"
    else:  # no test split: a fixed 30% of train
        order = np.random.default_rng(0).permutation(len(train["artist"]))
        cut = int(0.7 * len(order))
        train, test = (
            {k: v[order[:cut]] for k, v in train.items()},
            {k: v[order[cut:]] for k, v in train.items()},
        )
        held = "30% of train"
    report = {
        "model_dir": model_dir,
        "probe_scored_on": held,
        "train_images": len(train["artist"]),
        "score": "mean over factors: R^2 (continuous), chance-corrected accuracy (categorical); 0 = chance",
    }
    report.update(probe_table(train, test, info))
    report["artist_accuracy"] = {
        code: probes.score(
            probes.fit(train[code], train["artist"], len(artists)), test[code], test["artist"]
        )
        for code in CODES
    }
    report["artist_chance"] = 1.0 / len(artists)
    n = min(TRANSFER_IMAGES, len(test["image"]))
    report["held_out_artist"] = held_out_transfer(
        space, test["image"][:n], test["content_factors"][:n], info, len(artists)
    )
    out_dir = out_dir or os.path.join(model_dir, "eval")
    return transfer_eval.add_transfer_and_write(
        report,
        transfer_model(space, artist_styles(space, train, len(artists))),
        data_dir,
        space.config.image_size,
        out_dir,
        "style_space_report.json",
    )


def format_report(report: dict) -> str:
    lines = [f"Linear probes ({report['probe_scored_on']}; {report['score']}):"]
    lines += [
        f"  {pair:36s} {value:.3f}" if value is not None else f"  {pair:36s} n/a"
        for pair, value in report["four_numbers"].items()
    ]
    lines += [
        f"  artist accuracy from {code:14s} {acc:.3f} (chance {report['artist_chance']:.3f})"
        for code, acc in report["artist_accuracy"].items()
    ]
    lines += [f"  {name:36s} {value:.4f}" for name, value in report["held_out_artist"].items()]
    lines += [
        "Transfers x -> a' (held-out split, style from a' 's training drawings):",
        transfer_eval.format_summary(report["transfer"]),
    ]
    return "\n".join(lines)


def cli_report(
    model_dir: str,
    compare_model_dir: str = "",
    data_dir: str = "",
    out_dir: str = "",
    through_stage: str = "",
) -> str:
    """What `python -m tf_gadn.evaluate` prints for a style-space run (this method's `Method.evaluator`): probes on
    the codes and transfers; the comparison run, data set and stage options are GADN's and ignored here."""
    del compare_model_dir, data_dir, through_stage
    return format_report(evaluate(model_dir, out_dir))
