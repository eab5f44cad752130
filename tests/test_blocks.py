"""The shared residual blocks: shapes through both trunks, and weight normalisation's scale invariance."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from tf_gadn.nn.blocks import ResidualBlock, TrunkSpec, WeightNorm, down_trunk, up_trunk


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
