"""The style-space networks of Table 1: shapes, weight-normalised convolutions everywhere, a real 3-net consortium."""
import keras
import numpy as np
import pytest
import tensorflow as tf
from conftest import tiny_config

from tf_gadn.nn.blocks import WeightNorm
from tf_gadn.style_space import networks as style_space

TINY = tiny_config("style_space_tiny", ss_gen_blocks=(2, 2))


def test_shapes_of_every_network():
    nets = style_space.build_networks(TINY, num_artists=3)
    x = tf.zeros([2, 32, 32, 3])
    assert nets["style_encoder"](x).shape == (2, 16)
    assert nets["style_classifier"](x).shape == (2, 3)
    mean, std = nets["content_encoder"](x)
    assert mean.shape == std.shape == (2, 16) and bool(tf.reduce_all(std > 0))
    assert nets["decoder"]([tf.zeros([2, 4]), tf.zeros([2, 16])]).shape == (2, 32, 32, 3)
    assert nets["generator"]([tf.zeros([2, 4]), tf.zeros([2, 8]), tf.zeros([2, 4])]).shape == (2, 32, 32, 3)
    assert nets["representative_styles"](tf.constant([0, 2])).shape == (2, 16)
    for scale in range(style_space.DISCRIMINATOR_SCALES):
        assert nets[f"discriminator{scale}"](tf.zeros([5, 8, 8, 3])).shape == (5,)


def test_every_convolution_is_weight_normalised():
    net = style_space.build_networks(TINY, 3, ["generator"])["generator"]
    convs = [layer for layer in net._flatten_layers() if isinstance(layer, keras.layers.Conv2D)]
    wrapped = [layer for layer in net._flatten_layers() if isinstance(layer, WeightNorm)]
    assert convs and {id(c) for c in convs} <= {id(w.layer) for w in wrapped}


def test_consortium_members_share_structure_not_weights():
    nets = style_space.build_networks(TINY, 3, ["discriminator0", "discriminator1", "discriminator2"])
    shapes = [[tuple(w.shape) for w in n.weights] for n in nets.values()]
    assert shapes[0] == shapes[1] == shapes[2]
    first = [w.numpy() for w in nets["discriminator0"].weights]
    second = [w.numpy() for w in nets["discriminator1"].weights]
    assert any(not np.allclose(a, b) for a, b in zip(first, second))


def test_code_lengths_must_fit_the_gan_code():
    with pytest.raises(ValueError, match="gan_code_dim"):
        style_space.build_networks(TINY.replace(d_style=10, d_content=10), 3)
