"""The evaluation feature network: a small CNN this project trains on the data set itself (no downloaded weights).

Its 64-d bottleneck is the feature space of the Fréchet distance, and its heads are the factor probes: one head for
the artist, and on synthetic data one per content and style factor (softmax for categorical factors, regression on
standardised values for continuous ones). Trained on real training images only, with a fixed seed, so two models
evaluated on the same data set are measured by the same network. Weights are cached per data set and size.

A dead network (every ReLU off: one constant feature vector for every image) would report a Fréchet distance of 0 and
chance-level probes, which read as a perfect model. Measured: the 40-artist collection of BUILD.md "An unseen
collection" trained dead once and healthy in the next process (thread timing makes the runs differ). So a network is
checked after training and after loading, and a dead one is trained again from the next seed (seed 0 first, so a
healthy network is the one it always was); when every seed gives a dead one, evaluation stops with the reason.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import sys

import keras
import numpy as np
import tensorflow as tf

from tf_gadn.data import records

FEATURES = 64
CACHE_SUBDIR = "feature_nets"  # inside the data set's directory
STEPS = 600
BATCH = 64
LEARNING_RATE = 2e-3
SEEDS = (0, 1, 2)
CHECK_IMAGES = 512
# Largest per-feature standard deviation over the check images below which the features count as constant (a
# healthy network's are about 1; a dead one's 1e-7).
DEAD_STD = 1e-4


class FeatureNetworkError(ValueError):
    """The measuring network learned nothing on this data set (see the module docstring)."""


@dataclasses.dataclass(frozen=True)
class Head:
    """One output of the network: a factor (or the artist) and how it is predicted."""

    name: str  # "artist", "content/hair_colour", "style/outline", ...
    classes: int  # 0 = continuous (regressed after standardising)
    mean: float = 0.0
    std: float = 1.0


class FeatureNetwork:
    """features(images) -> [N, 64]; predict(images) -> {head name: class ids or factor values}."""

    def __init__(self, image_size: int, heads: list[Head], seed: int = 0):
        self.heads = heads
        keras.utils.set_random_seed(seed)
        full = dict(
            dtype="float32"
        )  # the measuring network never follows a training run's bfloat16 policy
        inputs = keras.Input((image_size, image_size, 3))
        h = inputs
        for channels in (32, 64, 128, 128):
            h = keras.layers.Conv2D(
                channels, 3, strides=2, padding="same", activation="relu", **full
            )(h)
            h = keras.layers.Conv2D(channels, 3, padding="same", activation="relu", **full)(h)
        h = keras.layers.GlobalAveragePooling2D(**full)(h)
        features = keras.layers.Dense(FEATURES, name="features", **full)(h)
        outputs = [
            keras.layers.Dense(max(head.classes, 1), name=f"head{i}", **full)(
                keras.layers.ReLU(**full)(features)
            )
            for i, head in enumerate(heads)
        ]
        self.model = keras.Model(inputs, [features] + outputs)

    def _run(self, images) -> list[np.ndarray]:
        return list(self.model.predict(np.asarray(images, np.float32), batch_size=256, verbose=0))

    def features(self, images) -> np.ndarray:
        return self._run(images)[0]

    def predict(self, images) -> dict[str, np.ndarray]:
        outs = self._run(images)[1:]
        return {
            head.name: (out.argmax(axis=1) if head.classes else out[:, 0] * head.std + head.mean)
            for head, out in zip(self.heads, outs)
        }

    def fit(
        self, images: np.ndarray, targets: dict[str, np.ndarray], steps: int = 0, seed: int = 0
    ) -> None:
        steps = steps or STEPS  # read at call time: the cache key of `trained` reads it too
        optimizer = keras.optimizers.Adam(LEARNING_RATE)
        rng = np.random.default_rng(seed)
        standardised = [
            np.asarray(targets[h.name], np.float32)
            if h.classes
            else (np.asarray(targets[h.name], np.float32) - h.mean) / h.std
            for h in self.heads
        ]

        @tf.function
        def step(x, ys):
            with tf.GradientTape() as tape:
                outs = self.model(x, training=True)[1:]
                loss = 0.0
                for head, out, y in zip(self.heads, outs, ys):
                    if head.classes:
                        loss += tf.reduce_mean(
                            tf.nn.sparse_softmax_cross_entropy_with_logits(
                                labels=tf.cast(y, tf.int32), logits=out
                            )
                        )
                    else:
                        loss += tf.reduce_mean(tf.square(out[:, 0] - y))
            grads = tape.gradient(loss, self.model.trainable_variables)
            optimizer.apply(grads, self.model.trainable_variables)
            return loss

        for _ in range(steps):
            idx = rng.integers(0, len(images), BATCH)
            step(tf.constant(images[idx], tf.float32), [tf.constant(y[idx]) for y in standardised])


def heads_for(
    info: dict, num_artists: int, content: np.ndarray | None, style: np.ndarray | None
) -> list[Head]:
    """The artist head, plus one per known factor that varies (synthetic data sets know theirs)."""
    heads = [Head("artist", num_artists)]
    for kind, values in (("content", content), ("style", style)):
        if values is None or not len(values):
            continue
        for k, (name, classes) in enumerate(
            zip(info.get(f"{kind}_factors", []), info.get(f"{kind}_classes", []))
        ):
            column = values[:, k]
            if np.std(column) < 1e-9:
                continue
            heads.append(
                Head(f"{kind}/{name}", int(classes))
                if classes
                else Head(f"{kind}/{name}", 0, float(column.mean()), float(column.std()))
            )
    return heads


def targets_for(heads: list[Head], info: dict, artists, content, style) -> dict[str, np.ndarray]:
    out = {}
    for head in heads:
        if head.name == "artist":
            out[head.name] = np.asarray(artists)
            continue
        kind, name = head.name.split("/", 1)
        values = content if kind == "content" else style
        out[head.name] = values[:, info[f"{kind}_factors"].index(name)]
    return out


def is_dead(net: FeatureNetwork, images: np.ndarray) -> bool:
    """True when the network gives (nearly) the same features to every image: nothing to measure with."""
    pick = np.random.default_rng(0).permutation(len(images))[:CHECK_IMAGES]
    return float(net.features(images[pick]).std(axis=0).max()) < DEAD_STD


def of_data_set(
    data_dir: str, image_size: int, fallback_dir: str, train: dict, info: dict, num_artists: int
) -> FeatureNetwork:
    """The measuring network of one data set, kept in DATA_DIR/feature_nets/ (`fallback_dir` when the data directory
    is read-only) and keyed by the data set's contents, so every run and report on it is measured by the same
    network. From the same seed the network is bit-identical between two processes of one kind, but a training run's
    --eval_every probe and `evaluate` trained two different ones (as do two machines), and the difference matters:
    one style-space model on line art measured FD 71 with the first and 44 with the second, while two recipes on
    that data set differed by 3 and 8 with either (BUILD.md "One ruler per data set")."""
    shared = os.path.join(data_dir, CACHE_SUBDIR)
    writable = os.access(shared if os.path.isdir(shared) else data_dir, os.W_OK)
    key = {"data": records.fingerprint(data_dir), "image_size": image_size}
    return trained(shared if writable else fallback_dir, key, train, info, num_artists)


def trained(
    cache_dir: str, data_key: dict, train: dict, info: dict, num_artists: int
) -> FeatureNetwork:
    """The feature network of one data set (`train`: a split as tf_gadn.evaluation.transfer_eval.load_split gives it), loaded
    from `cache_dir` when a network with the same data key, heads and schedule was trained before; never a dead one
    (module docstring)."""
    content, style = train.get("content_factors"), train.get("style_factors")
    heads = heads_for(info, num_artists, content, style)
    images = np.asarray(train["image"], np.float32)
    tag = hashlib.sha1(
        json.dumps(
            {**data_key, "heads": [dataclasses.asdict(h) for h in heads], "steps": STEPS},
            sort_keys=True,
        ).encode()
    ).hexdigest()[:12]
    path = os.path.join(cache_dir, f"feature_net_{tag}.weights.h5")
    if os.path.exists(path):
        net = FeatureNetwork(int(images.shape[1]), heads)
        net.model.load_weights(path)
        if not is_dead(net, images):
            return net
        print(
            f"warning: the cached feature network {path} is dead; training it again",
            file=sys.stderr,
        )
    targets = targets_for(heads, info, train["artist"], content, style)
    for seed in SEEDS:
        net = FeatureNetwork(int(images.shape[1]), heads, seed=seed)
        net.fit(images, targets, seed=seed)
        if not is_dead(net, images):
            os.makedirs(cache_dir, exist_ok=True)
            with records.atomic_file(path, ".weights.h5") as tmp:
                net.model.save_weights(tmp)
            return net
        print(
            f"warning: the evaluation's feature network trained from seed {seed} is dead (one feature vector for "
            "every image: a Fréchet distance of 0 and chance-level probes); training it from another seed",
            file=sys.stderr,
            flush=True,
        )
    raise FeatureNetworkError(
        f"the evaluation's feature network stayed dead from seeds {SEEDS} on {data_key}: its Fréchet distances "
        "and probes would mean nothing. Are the training images all alike? (A training run can skip these numbers "
        "with --eval_every=0.)"
    )
