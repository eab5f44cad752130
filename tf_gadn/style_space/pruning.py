"""Pruning the style code (style-space paper Sections 3.1 and 6.1, Figure 1, equation 10): how good are the first d
dimensions alone, for d = 1, 2, 4, ..., D, and which d_style to keep.

Two curves per network, on a held-out split: top-1 accuracy of nearest-centre classification with the first d
dimensions (metric network: nearest learned representative style s_i, as the paper classifies; classification
baseline: nearest class mean of its code, the means taken on the train split) and the variance ratio of equation (10).
The metric network's prefix scale h_d multiplies every distance of a prefix alike, so it cannot change the argmin and
is left out. Rule for d_style: the smallest d whose accuracy is within `tolerance` (absolute, default 2 points, and
never more than the full code's error rate) of the accuracy with all D dimensions (the paper keeps 32 of 512: "almost
as good as using all 512").

`python -m tf_gadn.pruning --model_dir M [--split test|train]` writes pruning.png, pruning.json and prints a markdown
table; a data set without a test split is refused unless --split train is explicit. The style_encoder stage runs the
same report when it finishes, on the test split if there is one, else on train (labelled so in the report).
"""

from __future__ import annotations

import dataclasses
import json
import os

import numpy as np
import tensorflow as tf

from tf_gadn import losses
from tf_gadn.data import pipeline, records
from tf_gadn.evaluation import visualize
from tf_gadn.style_space.common import encoder_dir
from tf_gadn.training.config import Config

DEFAULT_TOLERANCE = 0.02
PRUNING_JSON = "pruning.json"
PRUNING_PNG = "pruning.png"
# The metric-learned S; the classification-trained network of Section 6.1; and (--ss_nested_baseline) that network
# trained under the same nested dropout as S. Each curve's checkpoint name:
SOURCES = {
    "metric": "style_encoder",
    "baseline": "style_classifier",
    "baseline_nested": "style_classifier_nested",
}
NETWORKS = tuple(SOURCES)
LABELS = {
    "metric": "metric learning (nearest s_i)",
    "baseline": "classification (nearest class mean)",
    "baseline_nested": "classification, nested dropout (nearest class mean)",
}
BASELINES = ("baseline", "baseline_nested")


def curves_of(networks: dict) -> tuple[str, ...]:
    """The curves a trained style_encoder stage can draw (the nested baseline only if it was trained)."""
    return tuple(name for name in NETWORKS if SOURCES[name] in networks)


def prefix_lengths(dim: int) -> list[int]:
    """1, 2, 4, ... up to and including D (Figure 1's log-scale x axis)."""
    if dim < 1:
        raise ValueError(f"code dimension must be >= 1, got {dim}")
    lengths = [2**k for k in range(dim.bit_length()) if 2**k < dim]
    return lengths + [dim]


@dataclasses.dataclass
class ArtistSums:
    """Per-artist count, sum and sum of squares (per coordinate) of codes: all that eq. (10) and class means need."""

    counts: np.ndarray  # [A]
    sums: np.ndarray  # [A, D]
    sums_of_squares: np.ndarray  # [A, D]

    @classmethod
    def empty(cls, num_artists: int, dim: int) -> ArtistSums:
        return cls(
            np.zeros(num_artists), np.zeros((num_artists, dim)), np.zeros((num_artists, dim))
        )

    def add(self, codes: np.ndarray, artists: np.ndarray) -> None:
        codes = np.asarray(codes, np.float64)
        np.add.at(self.counts, artists, 1.0)
        np.add.at(self.sums, artists, codes)
        np.add.at(self.sums_of_squares, artists, codes**2)

    def class_means(self) -> np.ndarray:
        if (self.counts == 0).any():
            raise ValueError(
                f"artists {np.flatnonzero(self.counts == 0).tolist()} have no image to take a mean of"
            )
        return self.sums / self.counts[:, None]

    def mean_and_std(self) -> tuple[np.ndarray, np.ndarray]:
        """Over all images, per coordinate (the GAN's style-code normalisation, style-space Section 4)."""
        total = self.counts.sum()
        mean = self.sums.sum(axis=0) / total
        return mean, np.sqrt(np.maximum(self.sums_of_squares.sum(axis=0) / total - mean**2, 0.0))

    def variance_ratio(self) -> np.ndarray:
        """Equation (10) for every prefix length 1..D."""
        present = self.counts > 0
        if present.sum() < 2:
            raise ValueError("the variance ratio needs images of at least two artists")
        return losses.style_variance_ratio(
            self.counts[present], self.sums[present], self.sums_of_squares[present]
        ).numpy()


def encoders(networks: dict):
    """x -> the code of every curve (metric: S(x); baselines: the input of the classifier's last layer), compiled."""
    nets = [
        networks[SOURCES[name]] if name == "metric" else networks[SOURCES[name]].encoder
        for name in curves_of(networks)
    ]
    return tf.function(lambda x: tuple(net(x) for net in nets), reduce_retracing=True)


def artist_sums(networks: dict, batches, num_artists: int) -> dict[str, ArtistSums]:
    """Streams a split through the networks, keeping per-artist sums only (the train split can be large)."""
    encode, names, sums = encoders(networks), curves_of(networks), None
    for batch in batches:
        codes = dict(zip(names, (c.numpy() for c in encode(batch["image"]))))
        if sums is None:
            sums = {name: ArtistSums.empty(num_artists, codes[name].shape[1]) for name in names}
        for name in names:
            sums[name].add(codes[name], batch["artist"].numpy())
    if sums is None:
        raise ValueError("the split holds no images")
    return sums


def encode_split(networks: dict, batches) -> dict[str, np.ndarray]:
    """{"metric": [N, D], "baseline": [N, D], ("baseline_nested": [N, D]), "artist": [N]} of a (held-out) split."""
    names = curves_of(networks)
    encode, parts = encoders(networks), {name: [] for name in names + ("artist",)}
    for batch in batches:
        for name, codes in zip(names, encode(batch["image"])):
            parts[name].append(codes.numpy())
        parts["artist"].append(batch["artist"].numpy())
    if not parts["artist"]:
        raise ValueError("the split holds no images")
    return {name: np.concatenate(values) for name, values in parts.items()}


def nearest_centre_accuracy(
    codes: np.ndarray, artists: np.ndarray, centres: np.ndarray, columns
) -> float:
    """Top-1 accuracy of "the nearest centre's artist" using only the code coordinates `columns`."""
    x, s = np.asarray(codes, np.float64)[:, columns], np.asarray(centres, np.float64)[:, columns]
    distances = (s**2).sum(axis=1)[None, :] - 2.0 * x @ s.T  # ||x||^2 is the same for every centre
    return float((distances.argmin(axis=1) == artists).mean())


def choose_d_style(dims, accuracy, tolerance: float = DEFAULT_TOLERANCE) -> int:
    """The smallest d whose accuracy is at least (accuracy with all D dimensions) - min(tolerance, its error).

    The tolerance never exceeds the full code's error rate, so a prefix at most doubles the share of drawings the
    code misnames: with few artists a well-trained S names every test drawing with its first 4 dimensions but 1-2
    (98.8% against 100%), and a code that short cannot place an artist it never saw (BUILD.md "Mirrored drawings")."""
    full = accuracy[list(dims).index(max(dims))]
    allowed = min(tolerance, 1.0 - full)
    return int(min(d for d, acc in zip(dims, accuracy) if acc >= full - allowed - 1e-9))


def configured(config: Config, model_dir: str) -> Config:
    """`config` with --d_style=0 replaced by the choice of the pruning report the run's style encoder wrote (the same
    rule on every collection: 8 of 32 dimensions on the 16-artist portraits, 32 on the 100-artist line art), or, for a
    run that inherits its encoders (--inherit_dir), by the d_style the inherited run trained its decoder with.
    Unchanged when d_style is set, and before the report exists (the style encoder stage does not need d_style)."""
    if config.d_style:
        return config
    source = encoder_dir(config, model_dir)
    if source != model_dir:
        from tf_gadn.training import checkpoints

        return dataclasses.replace(config, d_style=checkpoints.load_run_info(source)[0].d_style)
    path = os.path.join(source, "style_encoder", PRUNING_JSON)
    if not os.path.exists(path):
        return config
    with open(path, encoding="utf-8") as f:
        d_style = int(json.load(f)["d_style"])
    return dataclasses.replace(config, d_style=d_style)


def pruning_report(
    networks: dict,
    train_sums: dict[str, ArtistSums],
    eval_batches,
    split: str,
    tolerance: float = DEFAULT_TOLERANCE,
) -> dict:
    """Figure 1's two curves for both networks on `eval_batches`, and the chosen d_style (see module docstring)."""
    codes = encode_split(networks, eval_batches)
    names = curves_of(networks)
    centres = {"metric": networks["representative_styles"].styles.numpy()}
    centres.update({name: train_sums[name].class_means() for name in names if name in BASELINES})
    num_artists, dim = centres["metric"].shape
    dims = prefix_lengths(dim)
    report = {
        "split": split,
        "num_images": int(len(codes["artist"])),
        "num_artists": int(num_artists),
        "chance": 1.0 / num_artists,
        "dims": dims,
        "curves": list(names),
    }
    for name in names:
        held_out = ArtistSums.empty(num_artists, dim)
        held_out.add(codes[name], codes["artist"])
        ratio = held_out.variance_ratio()
        report[name] = {
            "accuracy": [
                nearest_centre_accuracy(codes[name], codes["artist"], centres[name], np.arange(d))
                for d in dims
            ],
            "variance_ratio": [float(ratio[d - 1]) for d in dims],
        }
    report["tolerance"] = tolerance
    report["rule"] = (
        f"smallest d with metric-learning accuracy >= accuracy with all {dim} dims - min({tolerance}, "
        "that accuracy's error rate) (absolute)"
    )
    report["d_style"] = choose_d_style(dims, report["metric"]["accuracy"], tolerance)
    return report


def report_curves(report: dict) -> list[str]:
    """The curves a report holds (reports written before the nested baseline have no "curves" entry)."""
    return report.get("curves", ["metric", "baseline"])


def markdown_table(report: dict) -> str:
    names = report_curves(report)
    short = {"metric": "metric", "baseline": "baseline", "baseline_nested": "nested baseline"}
    lines = [
        f"Style-code pruning on the {report['split']} split ({report['num_images']} images, "
        f"{report['num_artists']} artists, chance {report['chance']:.3f}); chosen d_style = {report['d_style']}",
        "",
        "| d | "
        + " | ".join(f"accuracy, {short[n]}" for n in names)
        + " | "
        + " | ".join(f"eq. 10 ratio, {short[n]}" for n in names)
        + " |",
        "|---:|" + "---:|" * (2 * len(names)),
    ]
    for k, d in enumerate(report["dims"]):
        cells = [f"{report[n]['accuracy'][k]:.3f}" for n in names]
        cells += [f"{report[n]['variance_ratio'][k]:.3f}" for n in names]
        lines.append(f"| {d} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def write_report(report: dict, out_dir: str) -> dict[str, str]:
    """pruning.json and pruning.png (accuracy and eq. 10 ratio against d, log x, both networks side by side)."""
    os.makedirs(out_dir, exist_ok=True)
    json_path = os.path.join(out_dir, PRUNING_JSON)
    records.write_json(json_path, report)
    panels = []
    for key, label in (
        ("accuracy", "top-1 accuracy"),
        ("variance_ratio", "variance ratio (eq. 10)"),
    ):
        curves = {
            LABELS[name]: (report["dims"], report[name][key]) for name in report_curves(report)
        }
        panels.append(
            visualize.line_plot_png(
                curves,
                os.path.join(out_dir, f"pruning_{key}.png"),
                "style dimensions d",
                label,
                log_x=True,
                title=f"{report['split']} split",
            )
        )
    png_path = visualize.save_png(
        os.path.join(out_dir, PRUNING_PNG), np.concatenate(panels, axis=1)
    )
    return {"json": json_path, "png": png_path}


def has_images(data_dir: str, split: str) -> bool:
    try:
        return any(tf.io.gfile.stat(f).length for f in records.shard_paths(data_dir, split))
    except FileNotFoundError:
        return False


def evaluation_split(data_dir: str, split: str = "test") -> str:
    """`split` if the data set has images there; "train" only when asked for by name. Held-out numbers (the paper's
    10% or 10 images per artist) need a data set prepared with --test_split; reporting train numbers as "test" would
    hide that the curves were measured on the images the networks learned."""
    if split == "train" or has_images(data_dir, split):
        return split
    raise ValueError(
        f"{data_dir!r} has no {split!r} images: prepare the data set with --test_split (python -m "
        "tf_gadn.data.prepare) for held-out curves, or pass --split train to measure on the training images"
    )


def split_batches(config: Config, split: str, batch_size: int = 64) -> tf.data.Dataset:
    """One in-order pass over a split in Lab, the style-space colour space."""
    return pipeline.make_dataset(
        config.data_dir,
        split,
        global_batch_size=batch_size,
        image_size=config.image_size,
        color="lab",
        seed=config.seed,
        shuffle=False,
        repeat=False,
        drop_remainder=False,
    )


def run(
    model_dir: str,
    split: str = "test",
    out_dir: str = "",
    tolerance: float = DEFAULT_TOLERANCE,
    batch_size: int = 64,
) -> dict:
    """Library form of the CLI: restores a trained style_encoder stage and writes its pruning report."""
    from tf_gadn.training import checkpoints

    config, artists, networks = checkpoints.load_trained(model_dir)
    missing = {"style_encoder", "representative_styles", "style_classifier"} - set(networks)
    if config.method != "style_space" or missing:
        raise ValueError(
            f"{model_dir!r} has no trained style_encoder stage (method {config.method!r}, "
            f"missing {sorted(missing)})"
        )
    train_sums = artist_sums(networks, split_batches(config, "train", batch_size), len(artists))
    split = evaluation_split(config.data_dir, split)
    report = pruning_report(
        networks, train_sums, split_batches(config, split, batch_size), split, tolerance
    )
    report["files"] = write_report(report, out_dir or os.path.join(model_dir, "style_encoder"))
    print(markdown_table(report), flush=True)
    return report
