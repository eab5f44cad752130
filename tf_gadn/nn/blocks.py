"""Residual blocks and level stacks shared by every network of both papers.

GADN (Section 4, Table 1): one convolution per block, ReLU on the residual branch before the add, a stride-2 block
opens each level ("SC"), a fully connected layer (F) closes the trunk; the generator runs the same sequence backwards.
Style space (Section 5.2, Table 1): the same trunk shape with weight-normalised convolutions and a configurable
number of blocks per level, built either from GADN's block (`block="gadn"`) or from the residual block of the paper's
reference [13] (Xiang & Li 2017, `block="wnres"`: two strictly weight-normalised convolutions, translated PReLUs, a
learned normalised addition that starts as the shortcut). One `TrunkSpec` describes any of them, at 32 px in tests or
256 px in the papers.
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
    block: str = "gadn"  # one of BLOCKS
    upsample: str = "transposed"  # one of UPSAMPLES: how an 'up' block computes conv(nearest_up(x))

    def __post_init__(self):
        if self.block not in BLOCKS:
            raise ValueError(f"block must be one of {BLOCKS}, got {self.block!r}")
        check_upsample(self.upsample)
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

    @property
    def weight_norm_dense(self) -> bool:
        """[13] normalises every layer, the output layers too (affine form); GADN's block keeps plain heads."""
        return self.block == "wnres"


BLOCKS = ("gadn", "wnres")
# Two computations of one function, conv3x3(nearest_up(x)) (`upsampled_conv`): "repeat" upsamples then convolves, as
# written; "transposed" is one stride-2 transposed convolution of x, 16/36 of the multiplies and faster (BUILD.md).
UPSAMPLES = ("transposed", "repeat")


def check_upsample(upsample: str):
    if upsample not in UPSAMPLES:
        raise ValueError(f"upsample must be one of {UPSAMPLES}, got {upsample!r}")


class WeightNorm(keras.layers.Wrapper):
    """w = g * v / ||v|| per output unit (Salimans & Kingma 2016), for Conv2D and Dense; replaces tfa's WeightNormalization.

    scale=False is [13]'s strict form w = v / ||v|| (no gain; wrap a layer without bias for no bias either)."""

    def __init__(self, layer, scale: bool = True, **kwargs):
        super().__init__(layer, **kwargs)
        self.scale = scale

    def build(self, input_shape):
        self.layer.build(input_shape)
        kernel = self.layer.kernel
        self.g = (
            self.add_weight(name="g", shape=(kernel.shape[-1],), initializer="ones")
            if self.scale
            else None
        )
        # Keep the wrapped layer's kernel as the direction v; its norm is divided out on every call.
        self.built = True

    def effective_kernel(self):
        v = self.layer.kernel
        axes = list(range(len(v.shape) - 1))
        inverse_norm = tf.math.rsqrt(tf.reduce_sum(tf.square(v), axis=axes) + 1e-12)
        return tf.convert_to_tensor(v) * (inverse_norm if self.g is None else self.g * inverse_norm)

    def call(self, inputs):
        w = self.effective_kernel()
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
    channels: int,
    kernel_size: int = 3,
    strides: int = 1,
    weight_norm: bool = False,
    name=None,
    strict: bool = False,
):
    """strict: [13]'s strictly weight-normalised convolution, w = v / ||v||, no gain, no bias."""
    layer = keras.layers.Conv2D(
        channels, kernel_size, strides=strides, padding="same", use_bias=not strict, name=name
    )
    if strict:
        return WeightNorm(layer, scale=False)
    return WeightNorm(layer) if weight_norm else layer


def dense_weights(layer):
    """(kernel, bias) a dense layer applies, weight-normalised or not."""
    if isinstance(layer, WeightNorm):
        return layer.effective_kernel(), layer.layer.bias
    return tf.convert_to_tensor(layer.kernel), tf.convert_to_tensor(layer.bias)


def conv_weights(layer):
    """(kernel, bias or None) a convolution applies, weight-normalised or not."""
    if isinstance(layer, WeightNorm):
        return layer.effective_kernel(), layer.layer.bias if layer.layer.use_bias else None
    return tf.convert_to_tensor(layer.kernel), layer.bias if layer.use_bias else None


def _fold_taps(kernel, axis: int):
    """3 taps (w0, w1, w2) along `axis` -> the 4 taps (w2, w1+w2, w0+w1, w0) of a stride-2 transposed convolution."""
    w0, w1, w2 = tf.unstack(kernel, axis=axis)
    return tf.stack([w2, w1 + w2, w0 + w1, w0], axis=axis)


def upsampled_conv(x, layer, upsample: str = "transposed"):
    """layer(nearest_up(x)) for a 3x3 'same' convolution `layer` (plain or weight-normalised), without building the
    upsampled input when upsample="transposed".

    Each output pixel (2i+p, 2j+q) of the upsampled convolution sees only the 2x2 source pixels rows {i-1, i} (p=0) or
    {i, i+1} (p=1), and likewise columns: the 3x3 taps that land on one source pixel add up. A stride-2 transposed
    convolution with 'SAME' padding places tap k of a 4-tap kernel at row 2i + k - 1, so the folded kernel
    (w2, w1+w2, w0+w1, w0) per axis gives the same sums, zero padding included: 16 multiplies per source pixel and
    channel pair instead of 36, and TensorFlow's fast strided kernels for its backward pass."""
    if upsample == "repeat":
        return layer(nearest_up(x))
    check_upsample(upsample)
    kernel, bias = conv_weights(layer)
    if tuple(kernel.shape[:2]) != (3, 3) or layer_strides(layer) != (1, 1):
        raise ValueError("upsampled_conv folds 3x3 stride-1 convolutions only")
    folded = tf.transpose(_fold_taps(_fold_taps(tf.cast(kernel, x.dtype), 0), 1), [0, 1, 3, 2])
    shape = tf.shape(x)
    out_shape = tf.stack([shape[0], 2 * shape[1], 2 * shape[2], kernel.shape[-1]])
    out = tf.nn.conv2d_transpose(x, folded, out_shape, strides=2, padding="SAME")
    out = tf.ensure_shape(out, _doubled(x.shape, kernel.shape[-1]))
    return out if bias is None else out + tf.cast(bias, x.dtype)


def _doubled(shape, channels: int):
    def twice(d):
        return None if d is None else 2 * d

    return [shape[0], twice(shape[1]), twice(shape[2]), channels]


def layer_strides(layer) -> tuple:
    return tuple((layer.layer if isinstance(layer, WeightNorm) else layer).strides)


def dense(units: int, weight_norm: bool = False, name=None):
    layer = keras.layers.Dense(units, name=name)
    return WeightNorm(layer) if weight_norm else layer


class ResidualBlock(keras.layers.Layer):
    """out = shortcut(x) + branch(x), branch = (conv -> ReLU) x convs_per_block; resample in {'none','down','up'}.

    'down' halves the size with a stride-2 first convolution; 'up' doubles it with nearest-neighbour upsampling
    before the branch (no transposed-convolution checkerboards: the transposed convolution `upsampled_conv` may run
    is the upsample-then-convolve function, not a learned one). The shortcut is the identity when shape is kept,
    else average-pool/upsample followed by a 1x1 projection (which commutes with nearest upsampling, so it runs on
    the small map).
    """

    def __init__(
        self,
        channels: int,
        resample: str = "none",
        convs_per_block: int = 1,
        weight_norm: bool = False,
        upsample: str = "transposed",
        **kwargs,
    ):
        super().__init__(**kwargs)
        if resample not in ("none", "down", "up"):
            raise ValueError(f"resample must be none|down|up, got {resample!r}")
        check_upsample(upsample)
        self.channels, self.resample, self.upsample = channels, resample, upsample
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
        if self.resample == "up":  # its first convolution is applied by upsampled_conv, not called
            self.branch[0].build(_doubled(input_shape, input_shape[-1]))
        super().build(input_shape)

    def call(self, x):
        if self.resample == "up":
            shortcut = nearest_up(self.projection(x))
            h = tf.nn.relu(upsampled_conv(x, self.branch[0], self.upsample))
            for layer in self.branch[1:]:
                h = tf.nn.relu(layer(h))
            return shortcut + h
        shortcut = x
        if self.resample == "down":
            shortcut = tf.nn.avg_pool2d(shortcut, 2, 2, "SAME")
        if self.projection is not None:
            shortcut = self.projection(shortcut)
        h = x
        for layer in self.branch:
            h = tf.nn.relu(layer(h))
        return shortcut + h


class TranslatedPReLU(keras.layers.Layer):
    """[13]'s activation: a PReLU translated by a learned per-channel b, f(x) = b + max(x - b, 0) + a min(x - b, 0).

    Strictly normalised layers have no bias; b is where the block's offsets live. The slope a is learned per channel,
    starts at 0.25 and is kept in [0, 1] (a PReLU's usual start; [13] bounds it)."""

    def build(self, input_shape):
        channels = (input_shape[-1],)
        self.slope = self.add_weight(
            name="slope", shape=channels, initializer=keras.initializers.Constant(0.25)
        )
        self.translation = self.add_weight(name="translation", shape=channels, initializer="zeros")
        self.built = True

    def call(self, x):
        slope = tf.cast(tf.clip_by_value(self.slope, 0.0, 1.0), x.dtype)
        b = tf.cast(self.translation, x.dtype)
        h = x - b
        return b + tf.nn.relu(h) - slope * tf.nn.relu(-h)


class NormalisedAddition(keras.layers.Layer):
    """out = (w_r r + w_s s) / sqrt(w_r^2 + w_s^2) per channel ([13]'s learned weighted addition of the residual
    branch r and the shortcut s). Starts at (w_r, w_s) = (0, 1): a fresh block passes its shortcut through."""

    def build(self, input_shape):
        channels = input_shape[0][-1]
        self.residual_weight = self.add_weight(
            name="residual_weight", shape=(channels,), initializer="zeros"
        )
        self.shortcut_weight = self.add_weight(
            name="shortcut_weight", shape=(channels,), initializer="ones"
        )
        self.built = True

    def call(self, inputs):
        residual, shortcut = inputs
        norm = tf.sqrt(tf.square(self.residual_weight) + tf.square(self.shortcut_weight) + 1e-12)
        w_r = tf.cast(self.residual_weight / norm, residual.dtype)
        w_s = tf.cast(self.shortcut_weight / norm, shortcut.dtype)
        return w_r * residual + w_s * shortcut


class WeightNormResidualBlock(keras.layers.Layer):
    """The residual block of [13]: out = TPReLU(add(branch(x), shortcut(x))), branch = conv -> TPReLU -> conv, every
    convolution strictly weight-normalised, `add` a NormalisedAddition that starts as the shortcut.

    'down': the first convolution is 4x4 with stride 2 ([13]: kernel = stride + 2); the shortcut average-pools.
    'up' (our choice, see BUILD.md): [13]'s second convolution is a 4x4 stride-2 transposed one; here x is upsampled
    nearest x2 first and both convolutions are 3x3, as GADN's block does (no checkerboards); the first keeps the
    input's channels, the second maps them to `channels`, mirroring the down block. The shortcut gets a 1x1 strict
    projection only when the channel count changes ([13]). Going up, the first convolution and the projection run on
    the small map (`upsampled_conv`; a 1x1 projection commutes with nearest upsampling)."""

    def __init__(
        self, channels: int, resample: str = "none", upsample: str = "transposed", **kwargs
    ):
        super().__init__(**kwargs)
        if resample not in ("none", "down", "up"):
            raise ValueError(f"resample must be none|down|up, got {resample!r}")
        check_upsample(upsample)
        self.channels, self.resample, self.upsample = channels, resample, upsample
        self.projection = None
        self.inner_activation = TranslatedPReLU(name="inner_activation")
        self.addition = NormalisedAddition(name="addition")
        self.output_activation = TranslatedPReLU(name="output_activation")

    def build(self, input_shape):
        inner = input_shape[-1] if self.resample == "up" else self.channels
        first_kernel, first_stride = (4, 2) if self.resample == "down" else (3, 1)
        self.first = conv(inner, first_kernel, first_stride, strict=True, name="conv1")
        self.second = conv(self.channels, 3, strict=True, name="conv2")
        if input_shape[-1] != self.channels:
            self.projection = conv(self.channels, 1, strict=True, name="projection")
        if self.resample == "up":  # applied by upsampled_conv, not called
            self.first.build(_doubled(input_shape, input_shape[-1]))
        super().build(input_shape)

    def shortcut(self, x):
        """The shortcut path of the block's input (upsampled after the projection when going up)."""
        if self.resample == "down":
            x = tf.nn.avg_pool2d(x, 2, 2, "SAME")
        x = x if self.projection is None else self.projection(x)
        return nearest_up(x) if self.resample == "up" else x

    def call(self, x):
        if self.resample == "up":
            first = upsampled_conv(x, self.first, self.upsample)
        else:
            first = self.first(x)
        branch = self.second(self.inner_activation(first))
        return self.output_activation(self.addition([branch, self.shortcut(x)]))


def nearest_up(x):
    """Nearest-neighbour x2; XLA-compilable, unlike resize's gradient."""
    return tf.repeat(tf.repeat(x, 2, axis=1), 2, axis=2)


def block(spec: TrunkSpec, channels: int, resample: str, name: str) -> keras.layers.Layer:
    """One residual block of the spec's type."""
    if spec.block == "wnres":
        return WeightNormResidualBlock(channels, resample, spec.upsample, name=name)
    return ResidualBlock(
        channels, resample, spec.convs_per_block, spec.weight_norm, spec.upsample, name=name
    )


def activation(spec: TrunkSpec) -> keras.layers.Layer:
    """What follows a dense layer of the trunk: [13]'s translated PReLU, or GADN's ReLU."""
    return TranslatedPReLU() if spec.block == "wnres" else keras.layers.ReLU()


def trunk_dense(spec: TrunkSpec, units: int, name: str) -> keras.layers.Layer:
    """A fully connected layer of a trunk; [13]'s networks keep the affine form (gain and bias) there."""
    return dense(units, spec.weight_norm or spec.weight_norm_dense, name=name)


def down_trunk(spec: TrunkSpec, name: str) -> keras.Sequential:
    """Image (S, S, C) -> feature vector: levels of SC...C blocks, flatten, optional F layer (Table 1 left to right)."""
    layers = []
    for level, (channels, blocks) in enumerate(zip(spec.channels, spec.blocks)):
        layers.append(block(spec, channels, "down", f"level{level}_down"))
        layers += [block(spec, channels, "none", f"level{level}_block{b}") for b in range(blocks)]
    layers.append(keras.layers.Flatten())
    if spec.fc_width:
        layers += [trunk_dense(spec, spec.fc_width, "fc"), activation(spec)]
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
        layers += [trunk_dense(spec, spec.fc_width, "fc"), activation(spec)]
    layers += [
        trunk_dense(spec, bottom * bottom * spec.channels[-1], "fc_to_map"),
        activation(spec),
        keras.layers.Reshape((bottom, bottom, spec.channels[-1])),
    ]
    for level in reversed(range(len(spec.channels))):
        layers += [
            block(spec, spec.channels[level], "none", f"level{level}_block{b}")
            for b in range(spec.blocks[level])
        ]
        up_channels = spec.channels[max(level - 1, 0)]
        layers.append(block(spec, up_channels, "up", f"level{level}_up"))
    # [13]'s last layer is affine weight-normalised (gain and bias), as GADN's is with weight_norm.
    layers += [
        conv(
            out_channels, 3, weight_norm=spec.weight_norm or spec.weight_norm_dense, name="to_image"
        ),
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
