"""The shared residual blocks: shapes through both trunks, weight normalisation's scale invariance, and the two
computations of an upsampling block being one function."""

import dataclasses

import keras
import numpy as np
import pytest
import tensorflow as tf

from tf_gadn.nn.blocks import (
    ResidualBlock,
    TrunkSpec,
    WeightNorm,
    down_trunk,
    up_trunk,
    upsampled_conv,
)


def test_trunks_map_images_to_vectors_and_back():
    spec = TrunkSpec(32, (8, 16), (1, 2), fc_width=24)
    features = down_trunk(spec, "down")(tf.zeros([3, 32, 32, 3]))
    assert features.shape == (3, 24)
    image = up_trunk(spec, 3, "up")(tf.random.normal([3, 10], seed=1))
    assert image.shape == (3, 32, 32, 3)
    assert float(tf.reduce_max(tf.abs(image))) <= 1.0


def test_residual_branch_has_relu_before_add():
    block = ResidualBlock(4, "none")
    x = tf.random.normal([1, 5, 5, 4], seed=2)
    # Branch output is relu(conv(x)) >= 0, so the block can only increase each activation of the identity shortcut.
    assert bool(tf.reduce_all(block(x) >= x - 1e-6))


def test_weight_norm_output_ignores_scale_of_direction():
    layer = WeightNorm(keras.layers.Conv2D(4, 3, padding="same"))
    x = tf.random.normal([2, 6, 6, 3], seed=3)
    before = layer(x).numpy()
    layer.layer.kernel.assign(layer.layer.kernel * 7.0)
    np.testing.assert_allclose(layer(x).numpy(), before, rtol=1e-5, atol=1e-5)


def test_spec_rejects_sizes_that_do_not_divide():
    with pytest.raises(ValueError):
        TrunkSpec(48, (8, 16, 32, 64, 128), (1,) * 5)


def _conv_variants():
    """A plain, a weight-normalised and a strict (no gain, no bias) 3x3 convolution."""
    return [
        keras.layers.Conv2D(5, 3, padding="same"),
        WeightNorm(keras.layers.Conv2D(5, 3, padding="same")),
        WeightNorm(keras.layers.Conv2D(5, 3, padding="same", use_bias=False), scale=False),
    ]


@pytest.mark.parametrize("layer", _conv_variants(), ids=["plain", "weight_norm", "strict"])
def test_transposed_upsampled_conv_is_the_upsample_then_convolve_function(layer):
    """The folded transposed convolution gives conv(nearest_up(x)) and its gradients, borders included, on a map
    that is neither square nor even, with the batch size unknown when traced (as serving traces it)."""
    x = tf.random.stateless_normal([2, 5, 7, 3], seed=(4, 5))
    layer.build([None, 10, 14, 3])
    bias = (layer.layer if isinstance(layer, WeightNorm) else layer).bias
    if bias is not None:  # a zero bias would hide a bias added twice or not at all
        bias.assign(tf.random.stateless_normal(bias.shape, seed=(6, 7)))
    target = tf.random.stateless_normal([2, 10, 14, 5], seed=(8, 9))

    def run(upsample):
        @tf.function(input_signature=[tf.TensorSpec([None, 5, 7, 3])])
        def forward_and_gradients(x):
            with tf.GradientTape() as tape:
                tape.watch(x)
                y = upsampled_conv(x, layer, upsample)
                loss = tf.reduce_sum(tf.square(y - target))
            return y, tape.gradient(loss, [x] + layer.trainable_weights)

        return forward_and_gradients(x)

    y_fast, grads_fast = run("transposed")
    y_slow, grads_slow = run("repeat")
    assert y_fast.shape == (2, 10, 14, 5)
    np.testing.assert_allclose(y_fast, y_slow, atol=1e-5)
    assert len(grads_fast) == len(grads_slow) >= 2
    for fast, slow in zip(grads_fast, grads_slow):
        np.testing.assert_allclose(fast, slow, rtol=1e-4, atol=1e-4)


def test_upsampled_conv_border_is_not_wrapped_or_shifted():
    """One source pixel lit in a corner, a kernel of distinct taps: any off-by-one in the fold moves the output."""
    layer = keras.layers.Conv2D(1, 3, padding="same", use_bias=False)
    layer.build([None, 8, 8, 1])
    layer.kernel.assign(tf.reshape(tf.range(1.0, 10.0), [3, 3, 1, 1]))
    x = tf.scatter_nd([[0, 0, 3, 0]], [1.0], [1, 4, 4, 1])
    np.testing.assert_array_equal(
        upsampled_conv(x, layer, "transposed"), upsampled_conv(x, layer, "repeat")
    )


@pytest.mark.parametrize("block", ["gadn", "wnres"])
def test_up_trunks_are_one_function_either_way(block):
    """A generator trunk built with each upsample gives the same image from the same weights (one checkpoint layout)."""
    spec = TrunkSpec(16, (4, 8), (1, 1), fc_width=6, weight_norm=block == "wnres", block=block)
    fast = up_trunk(spec, 3, "fast")
    slow = up_trunk(dataclasses.replace(spec, upsample="repeat"), 3, "slow")
    codes = tf.random.stateless_normal([3, 10], seed=(1, 1))
    fast(codes), slow(codes)
    assert [w.shape for w in fast.weights] == [w.shape for w in slow.weights]
    for i, w in enumerate(fast.weights):
        w.assign(tf.random.stateless_normal(w.shape, seed=(i, 3)) * 0.3)
        slow.weights[i].assign(w)
    np.testing.assert_allclose(fast(codes), slow(codes), atol=1e-5)


def test_unknown_upsample_is_refused():
    with pytest.raises(ValueError, match="upsample must be one of"):
        TrunkSpec(16, (4,), (1,), upsample="bilinear")
