"""StarGAN's two networks (StarGAN Section 3 and appendix), composed from the shared residual blocks.

G(x, c): the target artist's one-hot label c is broadcast to a map and concatenated to the image's channels (Figure 3
of StarGAN), a stem convolution, stride-2 residual levels down, residual blocks at the bottom, nearest-neighbour
residual levels up, and the project's generator output. D: the shared down trunk with two heads, D_src (one WGAN score)
and D_cls (one logit per artist).

Departures from StarGAN's appendix, kept so every network of the project is built from the same blocks: no instance
normalisation, residual blocks in place of plain 4x4 convolutions, and D_src a dense layer on the whole last feature
map (a linear read of StarGAN's PatchGAN map) rather than a 3x3 convolution.
"""

from __future__ import annotations

import keras
import tensorflow as tf

from tf_gadn.nn.blocks import ResidualBlock, TrunkSpec, conv, down_trunk, output_activation
from tf_gadn.nn.networks import blank_images, float32
from tf_gadn.training.config import Config


def label_map(x, label):
    """[x, c broadcast over x's pixels]: StarGAN's way of conditioning an image-to-image G on a domain."""
    size = tf.shape(x)
    c = tf.broadcast_to(label[:, None, None, :], [size[0], size[1], size[2], tf.shape(label)[-1]])
    return tf.concat([x, tf.cast(c, x.dtype)], axis=-1)


class StarGenerator(keras.Model):
    """G(x, c) -> image in model space; c is a [B, num_artists] label (one-hot, or a blend of two)."""

    def __init__(
        self,
        image_size: int,
        channels: tuple,
        bottleneck_blocks: int,
        num_artists: int,
        output: str = "tanh",
        upsample: str = "transposed",
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.stem = conv(channels[0], 3, name="stem")
        self.down = [
            ResidualBlock(c, "down", name=f"level{i}_down") for i, c in enumerate(channels[1:])
        ]
        self.bottleneck = [
            ResidualBlock(channels[-1], name=f"bottleneck{b}") for b in range(bottleneck_blocks)
        ]
        self.up = [
            ResidualBlock(c, "up", upsample=upsample, name=f"level{i}_up")
            for i, c in reversed(list(enumerate(channels[:-1])))
        ]
        self.to_image = conv(3, 3, name="to_image")
        self.activation = output_activation(output)
        self([tf.zeros([1, image_size, image_size, 3]), tf.zeros([1, num_artists])])

    def call(self, inputs):
        x, label = inputs
        h = tf.nn.relu(self.stem(label_map(x, label)))
        for block in self.down + self.bottleneck + self.up:
            h = block(h)
        return float32(self.activation(self.to_image(h)))


class StarDiscriminator(keras.Model):
    """x -> (D_src(x) [B], D_cls(x) [B, num_artists] logits): one trunk, two heads."""

    def __init__(self, spec: TrunkSpec, num_artists: int, **kwargs):
        super().__init__(**kwargs)
        self.trunk = down_trunk(spec, "trunk")
        self.source = keras.layers.Dense(1, name="source")
        self.domain = keras.layers.Dense(num_artists, name="domain")
        self(blank_images(spec))

    def call(self, x):
        h = self.trunk(x)
        return float32(self.source(h))[:, 0], float32(self.domain(h))


def build_networks(config: Config, num_artists: int, names=None) -> dict:
    """StarGAN's networks by their checkpoint names (all, or just `names`)."""
    disc_spec = TrunkSpec(
        config.image_size,
        tuple(config.stargan_disc_channels),
        tuple(0 for _ in config.stargan_disc_channels),
    )
    builders = {
        "generator": lambda: StarGenerator(
            config.image_size,
            tuple(config.stargan_gen_channels),
            config.stargan_bottleneck_blocks,
            num_artists,
            config.generator_output,
            config.upsample_conv,
            name="generator",
        ),
        "discriminator": lambda: StarDiscriminator(disc_spec, num_artists, name="discriminator"),
    }
    unknown = set(names or ()) - set(builders)
    if unknown:
        raise ValueError(f"unknown StarGAN network(s) {sorted(unknown)}")
    return {name: builders[name]() for name in (names or builders)}
