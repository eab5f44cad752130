"""Residual blocks and level stacks shared by every network of both papers.

GADN (Section 4, Table 1): one convolution per block, ReLU on the residual branch before the add, a stride-2 block
opens each level ("SC"), a fully connected layer (F) closes the trunk; the generator runs the same sequence backwards.
Style space (Section 5.2, Table 1): the same trunk shape with weight-normalised convolutions ([13]) and a
configurable number of blocks per level. One `TrunkSpec` describes either, at 32 px in tests or 256 px in the papers.
"""

from __future__ import annotations

import dataclasses

import keras
import tensorflow as tf


@dataclasses.dataclass(frozen=True)
class TrunkSpec:
    """Sizes of a trunk: level i opens with a stride-2 block to `channels[i]`, then `blocks[i]` stride-1 blocks."""

    image_size: int
    channels: tuple[int, ...]
    blocks: tuple[int, ...]
    fc_width: int = 0  # width of the F layer; 0 = none
    convs_per_block: int = 1  # GADN uses 1
    weight_norm: bool = False  # style-space networks use weight-normalised convolutions

    def __post_init__(self):
        if len(self.channels) != len(self.blocks):
            raise ValueError(
                f"channels {self.channels} and blocks {self.blocks} need one entry per level"
            )
        if self.image_size % (2 ** len(self.channels)):
            raise ValueError(
                f"image_size {self.image_size} is not divisible by 2^{len(self.channels)} levels"
            )

    @property
    def bottom_size(self) -> int:
        return self.image_size // 2 ** len(self.channels)


class WeightNorm(keras.layers.Wrapper):
    """w = g * v / ||v|| per output unit (Salimans & Kingma 2016), for Conv2D and Dense; replaces tfa's WeightNormalization."""

    def build(self, input_shape):
        self.layer.build(input_shape)
        kernel = self.layer.kernel
        self.g = self.add_weight(name="g", shape=(kernel.shape[-1],), initializer="ones")
        # Keep the wrapped layer's kernel as the direction v; its norm is divided out on every call.
        self.built = True

    def call(self, inputs):
        v = self.layer.kernel
        axes = list(range(len(v.shape) - 1))
        w = tf.convert_to_tensor(v) * (
            self.g / tf.sqrt(tf.reduce_sum(tf.square(v), axis=axes) + 1e-12)
        )
        if isinstance(self.layer, keras.layers.Conv2D):
            out = tf.nn.conv2d(
                inputs, w, strides=self.layer.strides, padding=self.layer.padding.upper()
            )
        else:
            out = tf.matmul(inputs, w)
        if self.layer.use_bias:
            out = out + self.layer.bias
        return out

    def compute_output_shape(self, input_shape):
        return self.layer.compute_output_shape(input_shape)


def conv(
    channels: int, kernel_size: int = 3, strides: int = 1, weight_norm: bool = False, name=None
):
    layer = keras.layers.Conv2D(channels, kernel_size, strides=strides, padding="same", name=name)
    return WeightNorm(layer) if weight_norm else layer


def dense(units: int, weight_norm: bool = False, name=None):
    layer = keras.layers.Dense(units, name=name)
    return WeightNorm(layer) if weight_norm else layer


class ResidualBlock(keras.layers.Layer):
    """out = shortcut(x) + branch(x), branch = (conv -> ReLU) x convs_per_block; resample in {'none','down','up'}.

    'down' halves the size with a stride-2 first convolution; 'up' doubles it with nearest-neighbour upsampling
    before the branch (no transposed-convolution checkerboards). The shortcut is the identity when shape is kept,
    else average-pool/upsample followed by a 1x1 projection.
    """

    def __init__(
        self,
        channels: int,
        resample: str = "none",
        convs_per_block: int = 1,
        weight_norm: bool = False,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if resample not in ("none", "down", "up"):
            raise ValueError(f"resample must be none|down|up, got {resample!r}")
        self.channels, self.resample = channels, resample
        self.branch = [
            conv(
                channels,
                3,
                strides=2 if (resample == "down" and i == 0) else 1,
                weight_norm=weight_norm,
            )
            for i in range(convs_per_block)
        ]
        self.projection = None
        self.weight_norm = weight_norm

    def build(self, input_shape):
        if self.resample != "none" or input_shape[-1] != self.channels:
            self.projection = conv(self.channels, 1, weight_norm=self.weight_norm)
        super().build(input_shape)

    def call(self, x):
        if self.resample == "up":
            x = tf.repeat(
                tf.repeat(x, 2, axis=1), 2, axis=2
            )  # nearest x2; XLA-compilable, unlike resize's gradient
        shortcut = x
        if self.resample == "down":
            shortcut = tf.nn.avg_pool2d(shortcut, 2, 2, "SAME")
        if self.projection is not None:
            shortcut = self.projection(shortcut)
        h = x
        for layer in self.branch:
            h = tf.nn.relu(layer(h))
        return shortcut + h


def down_trunk(spec: TrunkSpec, name: str) -> keras.Sequential:
    """Image (S, S, C) -> feature vector: levels of SC...C blocks, flatten, optional F layer (Table 1 left to right)."""
    layers = []
    for level, (channels, blocks) in enumerate(zip(spec.channels, spec.blocks)):
        layers.append(
            ResidualBlock(
                channels, "down", spec.convs_per_block, spec.weight_norm, name=f"level{level}_down"
            )
        )
        layers += [
            ResidualBlock(
                channels,
                "none",
                spec.convs_per_block,
                spec.weight_norm,
                name=f"level{level}_block{b}",
            )
            for b in range(blocks)
        ]
    layers.append(keras.layers.Flatten())
    if spec.fc_width:
        layers += [dense(spec.fc_width, spec.weight_norm, name="fc"), keras.layers.ReLU()]
    return keras.Sequential(layers, name=name)


OUTPUTS = ("tanh", "clip", "soft_clip")
SOFT_CLIP_SCALE = 1.05  # 1.05 tanh(h) reaches +-1 at |h| = 1.85, where tanh' is still 0.09 (0.01 at 0.99 for tanh)


@tf.custom_gradient
def straight_through_clip(h):
    """clip(h, -1, 1) forward; backward, the gradient passes inside the range and, outside it, only where it pulls h
    back in. Outputs stay images in [-1, 1], yet a pixel pushed past the range (white paper, black ink) still gets
    the gradient that tanh squashes to zero there; and no loss (an adversary's, say) can push it further out, so
    pre-activations cannot drift without bound."""
    inside = tf.abs(h) <= 1.0

    def grad(upstream):
        # Descent moves h by -upstream: above the range that is inward when upstream > 0, below it when < 0.
        inward = tf.logical_or(
            tf.logical_and(h > 1.0, upstream > 0), tf.logical_and(h < -1.0, upstream < 0)
        )
        return upstream * tf.cast(tf.logical_or(inside, inward), upstream.dtype)

    return tf.clip_by_value(h, -1.0, 1.0), grad


def up_trunk(
    spec: TrunkSpec, out_channels: int, name: str, output: str = "tanh"
) -> keras.Sequential:
    """Code vector -> image: Table 1 right to left (F, then C...CS per level), ending in a 3x3 conv and the output
    function (`OUTPUTS`): tanh; a straight-through clip that cannot saturate; or tanh scaled past the range and
    clipped the same way (smooth inside, never saturated at the targets +-1)."""
    if output not in OUTPUTS:
        raise ValueError(f"output must be one of {OUTPUTS}, got {output!r}")
    bottom = spec.bottom_size
    layers = []
    if spec.fc_width:
        layers += [dense(spec.fc_width, spec.weight_norm, name="fc"), keras.layers.ReLU()]
    layers += [
        dense(bottom * bottom * spec.channels[-1], spec.weight_norm, name="fc_to_map"),
        keras.layers.ReLU(),
        keras.layers.Reshape((bottom, bottom, spec.channels[-1])),
    ]
    for level in reversed(range(len(spec.channels))):
        layers += [
            ResidualBlock(
                spec.channels[level],
                "none",
                spec.convs_per_block,
                spec.weight_norm,
                name=f"level{level}_block{b}",
            )
            for b in range(spec.blocks[level])
        ]
        up_channels = spec.channels[max(level - 1, 0)]
        layers.append(
            ResidualBlock(
                up_channels, "up", spec.convs_per_block, spec.weight_norm, name=f"level{level}_up"
            )
        )
    layers += [
        conv(out_channels, 3, weight_norm=spec.weight_norm, name="to_image"),
        output_activation(output),
    ]
    return keras.Sequential(layers, name=name)


def output_activation(output: str) -> keras.layers.Layer:
    """The generators' last layer (`OUTPUTS`), shared by the code-to-image and image-to-image generators."""
    if output not in OUTPUTS:
        raise ValueError(f"output must be one of {OUTPUTS}, got {output!r}")
    return keras.layers.Activation(
        {
            "tanh": "tanh",
            "clip": straight_through_clip,
            "soft_clip": lambda h: straight_through_clip(SOFT_CLIP_SCALE * tf.tanh(h)),
        }[output]
    )
