"""One transfer report for every method: pixel error and its baselines, style attribution, per-factor probe errors,
Fréchet distances, on the held-out split (issue 11's "metrics that tell blur from style").

A method is measured through a `TransferModel` (RGB in [-1, 1] in and out), so GADN, the style space and any later
method are scored by the same code on the same pairs x -> a' (a' != a, drawn with a fixed seed). Ground-truth numbers
(pixel error, attribution, factor errors) need a synthetic data set, where `render(content, style)` is known; the
Fréchet distance and the artist probe work on any collection. The feature network (tf_gadn.evaluation.feature_net) is trained on
the data set's real training images and kept with the data set (under `cache_dir` when its directory is read-only).
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable

import numpy as np

from tf_gadn.data import pipeline, records
from tf_gadn.evaluation import feature_net, transfer_metrics

MAX_TEST_IMAGES = 512  # transfers scored against ground truth
FD_ARTISTS = 16  # target artists of the per-artist Fréchet distance
FD_SOURCES_PER_ARTIST = 64  # transfers into each of them


@dataclasses.dataclass(frozen=True)
class TransferModel:
    """transfer(images, source_artists, target_artists) -> images; sample(target_artists, rng) -> images or None."""

    transfer: Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray]
    sample: Callable[[np.ndarray, np.random.Generator], np.ndarray] | None = None


def check_same_artists(run_artists: list[dict], data_dir: str, model_dir: str) -> None:
    """A label-conditioned run transfers to artist ids: they must name the same artists in the run and the data."""
    run_names = [a["name"] for a in run_artists]
    data_names = [a["name"] for a in records.read_artists(data_dir)]
    if run_names != data_names:
        raise ValueError(
            f"{model_dir!r} was trained on artists {run_names[:4]}... ({len(run_names)}), {data_dir!r} has "
            f"{data_names[:4]}... ({len(data_names)}): its artist labels do not name this data set's artists"
        )


def load_split(data_dir: str, image_size: int, split: str, max_images: int | None = None) -> dict:
    """RGB images in [-1, 1], artists and (synthetic data) both factor vectors of a split, in file order."""
    info = records.read_dataset_info(data_dir)
    with_factors = bool(info.get("content_factors"))
    ds = pipeline.make_dataset(
        data_dir,
        split,
        global_batch_size=256,
        image_size=image_size,
        shuffle=False,
        repeat=False,
        drop_remainder=False,
        with_factors=with_factors,
    )
    parts: dict[str, list] = {}
    for batch in ds:
        for key in ("image", "artist", "content_factors", "style_factors"):
            if key in batch:
                parts.setdefault(key, []).append(batch[key].numpy())
        if max_images and sum(len(p) for p in parts["image"]) >= max_images:
            break
    return {key: np.concatenate(values)[:max_images] for key, values in parts.items()}


def held_out_split(
    data_dir: str, image_size: int, max_images: int = MAX_TEST_IMAGES
) -> tuple[dict, str]:
    """The test split when the data set has one; else the training split, said so in the report."""
    has_test = any(a.get("test_count") for a in records.read_artists(data_dir))
    split = "test" if has_test else "train"
    return load_split(data_dir, image_size, split, max_images), split


def other_artists(artists: np.ndarray, num_artists: int, seed: int) -> np.ndarray:
    """a' != a, uniform over the other artists, fixed by the seed (every method is scored on the same pairs)."""
    rng = np.random.default_rng([seed, 11])
    return (artists + rng.integers(1, num_artists, len(artists))) % num_artists


def synthetic_truth(
    info: dict, content_factors: np.ndarray, artists: np.ndarray, image_size: int
) -> np.ndarray:
    """render(content(x), style(a)) for each row, in RGB [-1, 1] (the artist's style without per-image jitter)."""
    from tf_gadn.data import synthetic

    return (
        np.stack(
            [
                synthetic.render(
                    synthetic.content_from_vector(f),
                    synthetic.artist_style(info["seed"], int(a)),
                    image_size,
                    info.get("family", "portraits"),
                )
                for f, a in zip(content_factors, artists)
            ]
        ).astype(np.float32)
        / 127.5
        - 1.0
    )


def artist_style_vectors(info: dict, num_artists: int) -> np.ndarray:
    from tf_gadn.data import synthetic

    return np.array(
        [
            synthetic.style_vector(synthetic.artist_style(info["seed"], a))
            for a in range(num_artists)
        ],
        np.float32,
    )


def batched(fn, *arrays, batch: int = 64) -> np.ndarray:
    """fn over the arrays in slices of `batch` rows, concatenated (bounded memory for any split size)."""
    return np.concatenate(
        [
            np.asarray(fn(*(a[i : i + batch] for a in arrays)))
            for i in range(0, len(arrays[0]), batch)
        ]
    )


def baseline_models(train: dict, num_artists: int) -> dict[str, TransferModel]:
    """What a transfer must beat, as transfer models (so every metric can score them): the input unchanged, the
    target artist's mean image, and the training image by a' nearest to x (pixel L2): a retrieval that copies a real
    drawing of the right artist."""
    artist_means = np.stack(
        [train["image"][train["artist"] == a].mean(axis=0) for a in range(num_artists)]
    )
    flat_train = train["image"].reshape(len(train["image"]), -1)

    def nearest(images, source_artists, targets):
        del source_artists
        out = np.empty_like(np.asarray(images))
        for i, (image, target) in enumerate(zip(images, targets)):
            candidates = np.flatnonzero(train["artist"] == target)
            d = np.sum((flat_train[candidates] - image.reshape(1, -1)) ** 2, axis=1)
            out[i] = train["image"][candidates[np.argmin(d)]]
        return out

    return {
        "input_unchanged": TransferModel(lambda images, source, targets: np.asarray(images)),
        "artist_mean_image": TransferModel(lambda images, source, targets: artist_means[targets]),
        "nearest_training_image": TransferModel(nearest),
    }


def pixel_baselines(
    test: dict, train: dict, targets: np.ndarray, truth: np.ndarray, num_artists: int
) -> dict:
    """Pixel error of each of `baseline_models` against the truth, as `baseline_<name>`."""
    return {
        f"baseline_{name}": float(
            np.mean(
                transfer_metrics.pixel_distances(
                    model.transfer(test["image"], test["artist"], targets), truth
                )
            )
        )
        for name, model in baseline_models(train, num_artists).items()
    }


def factor_errors(
    net: feature_net.FeatureNetwork, images: np.ndarray, truth: dict[str, np.ndarray]
) -> dict:
    """Per head: error of the network's prediction against `truth` (see transfer_metrics.factor_error)."""
    predicted = net.predict(images)
    return {
        h.name: transfer_metrics.factor_error(
            predicted[h.name], truth[h.name], h.classes, 1.0 if h.classes else h.std
        )
        for h in net.heads
        if h.name in truth
    }


def frechet_per_artist(
    net, model: TransferModel, train: dict, sources: dict, num_artists: int, seed: int
) -> dict:
    """Mean over (up to FD_ARTISTS) target artists of FD(train images of a', transfers of other artists' images into
    a'), the same for samples when the method has them, and the floor: FD between two halves of a' 's images."""
    rng = np.random.default_rng([seed, 12])
    transfer, sample, floor = [], [], []
    for target in range(min(num_artists, FD_ARTISTS)):
        real = net.features(train["image"][train["artist"] == target])
        if len(real) < 4:
            continue
        others = np.flatnonzero(sources["artist"] != target)
        chosen = rng.permutation(others)[:FD_SOURCES_PER_ARTIST]
        targets = np.full(len(chosen), target)
        fakes = batched(
            model.transfer, sources["image"][chosen], sources["artist"][chosen], targets
        )
        transfer.append(transfer_metrics.frechet_distance(real, net.features(fakes)))
        if model.sample is not None:
            samples = model.sample(targets, rng)
            sample.append(transfer_metrics.frechet_distance(real, net.features(samples)))
        half = rng.permutation(len(real))
        floor.append(
            transfer_metrics.frechet_distance(
                real[half[: len(real) // 2]], real[half[len(real) // 2 :]]
            )
        )
    out = {"fd_transfer": float(np.mean(transfer)), "fd_real_floor": float(np.mean(floor))}
    if sample:
        out["fd_sample"] = float(np.mean(sample))
    return out


def report(
    model: TransferModel, data_dir: str, image_size: int, cache_dir: str, seed: int = 1
) -> dict:
    """Every transfer number for one model on one data set (JSON-ready)."""
    info = records.read_dataset_info(data_dir)
    num_artists = len(records.read_artists(data_dir))
    train = load_split(data_dir, image_size, "train")
    test, split = held_out_split(data_dir, image_size)
    synthetic = info.get("source") == "synthetic" and "content_factors" in test
    targets = other_artists(test["artist"], num_artists, seed)
    transfers = batched(model.transfer, test["image"], test["artist"], targets)
    net = feature_net.of_data_set(data_dir, image_size, cache_dir, train, info, num_artists)
    out: dict = {
        "held_out_split": split,
        "test_images": int(len(targets)),
        "chance": 1.0 / num_artists,
    }
    predicted = net.predict(np.concatenate([transfers, test["image"]]))["artist"]
    out["artist_accuracy_on_transfers"] = float(np.mean(predicted[: len(targets)] == targets))
    out["artist_accuracy_on_real"] = float(np.mean(predicted[len(targets) :] == test["artist"]))
    if synthetic:
        truth = synthetic_truth(info, test["content_factors"], targets, image_size)
        source_truth = synthetic_truth(info, test["content_factors"], test["artist"], image_size)
        out["transfer_error"] = float(np.mean(transfer_metrics.pixel_distances(transfers, truth)))
        out.update(pixel_baselines(test, train, targets, truth, num_artists))
        out.update(transfer_metrics.style_attribution(transfers, truth, source_truth))
        styles = artist_style_vectors(info, num_artists)
        real_truth = feature_net.targets_for(
            net.heads, info, test["artist"], test["content_factors"], test["style_factors"]
        )
        transfer_truth = feature_net.targets_for(
            net.heads, info, targets, test["content_factors"], styles[targets]
        )
        real_errors = factor_errors(net, test["image"], real_truth)
        transfer_errors = factor_errors(net, transfers, transfer_truth)
        out["factor_errors"] = {
            name: {"real": real_errors[name], "transfer": transfer_errors[name]}
            for name in real_errors
            if name != "artist"
        }
        for kind in ("content", "style"):
            names = [n for n in out["factor_errors"] if n.startswith(kind + "/")]
            if names:
                out[f"{kind}_factor_error_real"] = float(np.mean([real_errors[n] for n in names]))
                out[f"{kind}_factor_error_transfer"] = float(
                    np.mean([transfer_errors[n] for n in names])
                )
    out.update(frechet_per_artist(net, model, train, test, num_artists, seed))
    return out


def add_transfer_and_write(
    report_so_far: dict,
    model: TransferModel,
    data_dir: str,
    image_size: int,
    out_dir: str,
    filename: str = "report.json",
) -> dict:
    """The common end of every method's evaluation: this module's `report` goes under "transfer", and the whole
    report is written to `out_dir/filename` (which keeps the feature network when the data folder is read-only)."""
    report_so_far["transfer"] = report(model, data_dir, image_size, out_dir)
    os.makedirs(out_dir, exist_ok=True)
    records.write_json(os.path.join(out_dir, filename), report_so_far)
    return report_so_far


SUMMARY_KEYS = (
    "transfer_error",
    "baseline_input_unchanged",
    "baseline_artist_mean_image",
    "baseline_nearest_training_image",
    "style_attribution",
    "style_distance_ratio",
    "content_factor_error_real",
    "content_factor_error_transfer",
    "style_factor_error_real",
    "style_factor_error_transfer",
    "artist_accuracy_on_real",
    "artist_accuracy_on_transfers",
    "chance",
    "fd_transfer",
    "fd_sample",
    "fd_real_floor",
)


def format_summary(numbers: dict) -> str:
    return "\n".join(
        f"  {k:36s} {numbers[k]:.4f}" for k in SUMMARY_KEYS if numbers.get(k) is not None
    )


class TrainingProbe:
    """The numbers of `report` on one fixed held-out batch, cheap enough to run every --eval_every steps: transfer
    pixel error (and its input-unchanged baseline), style attribution, artist accuracy of the feature network on
    transfers, and a pooled Fréchet distance to real training images. Built once per stage."""

    BATCH = 64
    REAL_FEATURES = 512

    def __init__(self, data_dir: str, image_size: int, cache_dir: str, seed: int = 1):
        info = records.read_dataset_info(data_dir)
        num_artists = len(records.read_artists(data_dir))
        train = load_split(data_dir, image_size, "train")
        self.test, _ = held_out_split(data_dir, image_size, self.BATCH)
        self.targets = other_artists(self.test["artist"], num_artists, seed)
        self.net = feature_net.of_data_set(
            data_dir, image_size, cache_dir, train, info, num_artists
        )
        pick = np.random.default_rng([seed, 13]).permutation(len(train["image"]))[
            : self.REAL_FEATURES
        ]
        self.real_features = self.net.features(train["image"][pick])
        self.truth = self.source_truth = None
        if info.get("source") == "synthetic" and "content_factors" in self.test:
            self.truth = synthetic_truth(
                info, self.test["content_factors"], self.targets, image_size
            )
            self.source_truth = synthetic_truth(
                info, self.test["content_factors"], self.test["artist"], image_size
            )

    def __call__(self, model: TransferModel) -> dict[str, float]:
        transfers = np.asarray(
            model.transfer(self.test["image"], self.test["artist"], self.targets)
        )
        out = {
            "artist_accuracy_on_transfers": float(
                np.mean(self.net.predict(transfers)["artist"] == self.targets)
            ),
            "fd_pooled": transfer_metrics.frechet_distance(
                self.real_features, self.net.features(transfers)
            ),
        }
        if self.truth is not None:
            out["transfer_error"] = float(
                np.mean(transfer_metrics.pixel_distances(transfers, self.truth))
            )
            out["baseline_input_unchanged"] = float(
                np.mean(transfer_metrics.pixel_distances(self.test["image"], self.truth))
            )
            out.update(transfer_metrics.style_attribution(transfers, self.truth, self.source_truth))
        return out
