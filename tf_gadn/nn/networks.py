"""Networks both papers build from the same Table 1 trunk (`tf_gadn.nn.blocks`), only their specs differ: a VAE
encoder E(x) -> (mean, std), a generator G([code parts]) -> image, and an image head (trunk + one dense layer) for
classifiers and discriminators. Constructors take a `TrunkSpec` and code sizes, never a Config.
"""

from __future__ import annotations

import keras
import tensorflow as tf

from tf_gadn.nn.blocks import TrunkSpec, dense, down_trunk, up_trunk

STD_FLOOR = 1e-4


def positive(x):
    """softplus + a small floor: std stays positive and its gradient never vanishes (the paper does not say how)."""
    return tf.nn.softplus(x) + STD_FLOOR


def float32(x):
    """Network outputs leave in float32 whatever the compute policy (losses stay in full precision)."""
    return tf.cast(x, tf.float32)


def blank_images(spec: TrunkSpec):
    """One all-zero image: calling a network on it once creates its variables (Keras 3 builds lazily)."""
    return tf.zeros([1, spec.image_size, spec.image_size, 3])


def reparameterize(mean, std, eps):
    """z = mean + std * eps with eps ~ N(0, I) from the input pipeline (Kingma & Welling)."""
    return mean + std * eps


class ContentEncoder(keras.Model):
    """E(x) -> (mean, std) of the content code."""

    def __init__(self, spec: TrunkSpec, content_dim: int, **kwargs):
        super().__init__(**kwargs)
        self.trunk = down_trunk(spec, "trunk")
        # Output layers are weight-normalised (affine) where the trunk's block asks for it ([13]).
        self.mean_head = dense(content_dim, spec.weight_norm_dense, name="mean")
        self.std_head = dense(content_dim, spec.weight_norm_dense, name="std")
        self(blank_images(spec))

    def call(self, x):
        h = self.trunk(x)
        return float32(self.mean_head(h)), positive(float32(self.std_head(h)))


class Generator(keras.Model):
    """G([code parts]) -> image in [-1, 1]: Table 1 run right to left on the concatenated code.

    GADN feeds [content, style]; the style-space decoder [style, content] and its GAN [style, content, noise]."""

    def __init__(self, spec: TrunkSpec, code_dim: int, output: str = "tanh", **kwargs):
        super().__init__(**kwargs)
        self.trunk = up_trunk(spec, 3, "trunk", output)
        self([tf.zeros([1, code_dim])])

    def call(self, parts):
        return float32(self.trunk(tf.concat(list(parts), axis=-1)))


class ImageHead(keras.Model):
    """Trunk + one dense output layer: C1/C2 (one logit per artist) and D (one score)."""

    def __init__(self, spec: TrunkSpec, outputs: int, **kwargs):
        super().__init__(**kwargs)
        self.trunk = down_trunk(spec, "trunk")
        self.out = dense(outputs, spec.weight_norm_dense, name="out")
        self.outputs_count = outputs
        self(blank_images(spec))

    def call(self, x):
        y = float32(self.out(self.trunk(x)))
        return y[:, 0] if self.outputs_count == 1 else y


class CodeClassifier(keras.Model):
    """An MLP naming the artist from a content code: GADN Appendix B.1's classifier of [3] on E(x) (10 hidden layers
    of 2048 there) and the style-space content VAE's adversary (--content_vae_adversary)."""

    def __init__(self, code_dim: int, hidden_layers: int, width: int, num_artists: int, **kwargs):
        super().__init__(**kwargs)
        self.mlp = keras.Sequential(
            [keras.layers.Dense(width, activation="relu") for _ in range(hidden_layers)]
            + [keras.layers.Dense(num_artists)],
            name="mlp",
        )
        self(tf.zeros([1, code_dim]))

    def call(self, code):
        return float32(self.mlp(code))
