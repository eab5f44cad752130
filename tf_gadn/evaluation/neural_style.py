"""Neural style transfer (Gatys, Ecker & Bethge, CVPR 2016) as an evaluation-time baseline of GADN Section 5 and
Figure 4: the output image itself is optimised so that its features match x's content features and the Gram
matrices of the target artist's drawings (a single reference drawing, or the average Gram over all of the artist's
training drawings), plus the colour-preserving variant of Gatys et al. [6] that GADN's appendix discusses.

No downloaded weights: Gatys et al. use ImageNet VGG-19; here the features are those of an artist classifier this
project trains on the same collection (the evaluation feature network's architecture with only the artist head and
its own seed, so it is not the network that measures the Fréchet distance and the probes). Adam on the pixels for a
fixed number of iterations, started from x.
"""

from __future__ import annotations

import hashlib
import os

import keras
import numpy as np
import tensorflow as tf

from tf_gadn import losses
from tf_gadn.data import color as colors
from tf_gadn.evaluation import feature_net
from tf_gadn.evaluation.transfer_eval import TransferModel

STYLE_LAYERS = (
    0,
    2,
    4,
    6,
)  # the first convolution of each level (conv1_1 ... conv4_1 in Gatys' VGG terms)
CONTENT_LAYER = 3  # the second convolution of level 1: 16 x 16 at 64 px (Gatys: conv4_2)
ITERATIONS = 100
LEARNING_RATE = 0.03
STYLE_WEIGHT = 30.0  # beta / alpha of Gatys et al. eq. 7 for this network's feature scale
NETWORK_SEED = 1  # the measuring feature network uses 0
BATCH = 64


def style_network(cache_dir: str, train: dict, num_artists: int) -> keras.Model:
    """image -> [activations of every convolution] of an artist classifier trained on `train` (cached)."""
    net = feature_net.FeatureNetwork(
        int(train["image"].shape[1]), [feature_net.Head("artist", num_artists)], seed=NETWORK_SEED
    )
    key = hashlib.sha1(
        np.ascontiguousarray(train["artist"]).tobytes() + train["image"][:8].tobytes()
    ).hexdigest()[:12]
    path = os.path.join(cache_dir, f"neural_style_net_{key}.weights.h5")
    if os.path.exists(path):
        net.model.load_weights(path)
    else:
        net.fit(train["image"], {"artist": train["artist"]}, seed=NETWORK_SEED)
        os.makedirs(cache_dir, exist_ok=True)
        net.model.save_weights(path)
    convolutions = [layer for layer in net.model.layers if isinstance(layer, keras.layers.Conv2D)]
    return keras.Model(net.model.input, [layer.output for layer in convolutions])


class NeuralStyle:
    """Gatys et al.'s optimisation against per-artist Gram targets.

    reference="single": the Grams of one drawing by a' (its first training drawing: "a reference drawing by the
    target artist"); reference="artist_mean": the Grams averaged over all of a' 's training drawings."""

    def __init__(
        self,
        network: keras.Model,
        train: dict,
        num_artists: int,
        reference: str = "single",
        iterations: int = ITERATIONS,
        style_weight: float = STYLE_WEIGHT,
        learning_rate: float = LEARNING_RATE,
    ):
        if reference not in ("single", "artist_mean"):
            raise ValueError(f"reference must be 'single' or 'artist_mean', got {reference!r}")
        self.network = network
        self.iterations, self.style_weight, self.learning_rate = (
            iterations,
            style_weight,
            learning_rate,
        )
        targets = []
        for a in range(num_artists):
            drawings = train["image"][train["artist"] == a]
            drawings = drawings[:1] if reference == "single" else drawings
            grams = [[] for _ in STYLE_LAYERS]
            for start in range(0, len(drawings), BATCH):
                features = self.network(tf.constant(drawings[start : start + BATCH]))
                for grams_of_layer, layer in zip(grams, STYLE_LAYERS):
                    grams_of_layer.append(losses.gram_matrix(features[layer]).numpy())
            targets.append([np.concatenate(g).mean(axis=0) for g in grams])
        # [layer] -> [num_artists, C, C]
        self.target_grams = [np.stack([t[i] for t in targets]) for i in range(len(STYLE_LAYERS))]
        self._cache: dict[bytes, np.ndarray] = {}

    def objective(self, x, content_features, grams):
        """alpha L_content + beta L_style (Gatys et al. eq. 7, alpha = 1), summed over the batch; layers weigh 1/|L|."""
        features = self.network(x)
        content = losses.feature_content_loss(features[CONTENT_LAYER], content_features)
        style = tf.add_n(
            [losses.gram_style_loss(features[layer], g) for layer, g in zip(STYLE_LAYERS, grams)]
        ) / float(len(STYLE_LAYERS))
        return tf.reduce_sum(content + self.style_weight * style)

    @tf.function(reduce_retracing=True)
    def _optimise(self, content_images, grams):
        content_features = self.network(content_images)[CONTENT_LAYER]
        beta1, beta2, eps = 0.9, 0.999, 1e-8

        def step(i, x, m, v):
            with tf.GradientTape() as tape:
                tape.watch(x)
                loss = self.objective(x, content_features, grams)
            g = tape.gradient(loss, x)
            m = beta1 * m + (1.0 - beta1) * g
            v = beta2 * v + (1.0 - beta2) * tf.square(g)
            t = tf.cast(i + 1, tf.float32)
            update = (m / (1.0 - beta1**t)) / (tf.sqrt(v / (1.0 - beta2**t)) + eps)
            return i + 1, tf.clip_by_value(x - self.learning_rate * update, -1.0, 1.0), m, v

        zeros = tf.zeros_like(content_images)
        _, x, _, _ = tf.while_loop(
            lambda i, *_: i < self.iterations, step, (tf.constant(0), content_images, zeros, zeros)
        )
        return x

    def stylise(self, images: np.ndarray, target_artists: np.ndarray) -> np.ndarray:
        """x optimised toward a' 's Grams from x itself (memoised: the colour-preserving variant reuses it)."""
        images = np.asarray(images, np.float32)
        target_artists = np.asarray(target_artists, np.int64)
        key = hashlib.sha1(images.tobytes() + target_artists.tobytes()).digest()
        if key not in self._cache:
            outs = []
            for start in range(0, len(images), BATCH):
                part = slice(start, start + BATCH)
                count = len(images[part])
                # padded to one batch shape, so the optimisation loop is traced once (images are independent)
                padded = np.resize(np.arange(start, start + count), BATCH)
                grams = [tf.constant(g[target_artists[padded]]) for g in self.target_grams]
                outs.append(self._optimise(tf.constant(images[padded]), grams).numpy()[:count])
            self._cache[key] = np.concatenate(outs)
        return self._cache[key]

    def transfer_model(self) -> TransferModel:
        return TransferModel(lambda images, source, targets: self.stylise(images, targets))


def keep_colours(output: np.ndarray, image: np.ndarray) -> np.ndarray:
    """Luminance-only transfer (Gatys et al. [6]): the output's Lab lightness with x's a and b, in RGB [-1, 1]."""
    out = colors.to_model_space(tf.constant(output, tf.float32), "lab")
    src = colors.to_model_space(tf.constant(image, tf.float32), "lab")
    return colors.to_rgb_m11(tf.concat([out[..., :1], src[..., 1:]], axis=-1), "lab").numpy()


def colour_preserving(model: TransferModel) -> TransferModel:
    """`model` with x's colours kept (the style moves only the lightness)."""
    return TransferModel(
        lambda images, source, targets: keep_colours(
            model.transfer(images, source, targets), images
        )
    )
