"""The GADN networks (Section 4): every one is the Table 1 trunk plus its own input/output layers.

E: trunk -> two parallel dense heads (mean, std) of the content code. G: [content, style] -> trunk backwards -> image.
S: not a network, a table of per-artist (mean, std) style codes. C1, C2: trunk -> one logit per artist.
D: trunk -> one score. Appendix B.1's classifier of [3]: an MLP on the content code.
"""

from __future__ import annotations

import keras
import tensorflow as tf

from tf_gadn.nn.networks import (
    CodeClassifier,
    ContentEncoder,
    Generator,
    ImageHead,
    float32,
    positive,
)
from tf_gadn.training.config import Config


class StyleTable(keras.layers.Layer):
    """S(a): per-artist mean and std of the style code; sees only the artist label, never the image."""

    def __init__(self, num_artists: int, style_dim: int, **kwargs):
        super().__init__(**kwargs)
        self.mean = self.add_weight(
            name="mean", shape=(num_artists, style_dim), initializer="zeros"
        )
        # softplus(0.5413) = 1: every artist starts as N(0, I), the prior of L_S-KL.
        self.raw_std = self.add_weight(
            name="raw_std",
            shape=(num_artists, style_dim),
            initializer=keras.initializers.Constant(0.5413),
        )
        self.built = True

    def call(self, artist):
        return float32(tf.gather(self.mean, artist)), positive(
            float32(tf.gather(self.raw_std, artist))
        )


def build_networks(config: Config, num_artists: int, names=None) -> dict:
    """GADN networks by their checkpoint names (all, or just `names`), built so restores and optimizers work at once."""
    spec = config.gadn_trunk()
    builders = {
        "encoder": lambda: ContentEncoder(spec, config.content_dim, name="encoder"),
        "generator": lambda: Generator(
            spec, config.content_dim + config.style_dim, config.generator_output, name="generator"
        ),
        "style_table": lambda: StyleTable(num_artists, config.style_dim, name="style_table"),
        "classifier1": lambda: ImageHead(spec, num_artists, name="classifier1"),
        "classifier2": lambda: ImageHead(spec, num_artists, name="classifier2"),
        "discriminator": lambda: ImageHead(spec, 1, name="discriminator"),
        "code_classifier": lambda: CodeClassifier(
            config.content_dim,
            config.mlp_layers,
            config.mlp_width,
            num_artists,
            name="code_classifier",
        ),
    }
    unknown = set(names or ()) - set(builders)
    if unknown:
        raise ValueError(f"unknown GADN network(s) {sorted(unknown)}")
    return {name: builders[name]() for name in (names or builders)}
