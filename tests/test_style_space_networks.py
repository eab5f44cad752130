"""The style-space networks of Table 1: shapes, weight-normalised convolutions everywhere, a real 3-net consortium."""

import keras
import numpy as np
import pytest
import tensorflow as tf
from conftest import tiny_config

from tf_gadn.nn.blocks import WeightNorm
from tf_gadn.style_space import networks as style_space

TINY = tiny_config("style_space_tiny", ss_gen_blocks=(3, 3))


def test_shapes_of_every_network():
    nets = style_space.build_networks(TINY, num_artists=3)
    x = tf.zeros([2, 32, 32, 3])
    assert nets["style_encoder"](x).shape == (2, 16)
    assert nets["style_classifier"](x).shape == (2, 3)
    mean, std = nets["content_encoder"](x)
    assert mean.shape == std.shape == (2, 16) and bool(tf.reduce_all(std > 0))
    assert nets["decoder"]([tf.zeros([2, 4]), tf.zeros([2, 16])]).shape == (2, 32, 32, 3)
    assert nets["generator"]([tf.zeros([2, 4]), tf.zeros([2, 8]), tf.zeros([2, 4])]).shape == (
        2,
        32,
        32,
        3,
    )
    assert nets["representative_styles"](tf.constant([0, 2])).shape == (2, 16)
    for scale in range(style_space.DISCRIMINATOR_SCALES):
        assert nets[f"discriminator{scale}"](tf.zeros([5, 8, 8, 3])).shape == (5,)


def test_every_convolution_is_weight_normalised():
    net = style_space.build_networks(TINY, 3, ["generator"])["generator"]
    convs = [layer for layer in net._flatten_layers() if isinstance(layer, keras.layers.Conv2D)]
    wrapped = [layer for layer in net._flatten_layers() if isinstance(layer, WeightNorm)]
    assert convs and {id(c) for c in convs} <= {id(w.layer) for w in wrapped}


def test_consortium_members_share_structure_not_weights():
    nets = style_space.build_networks(
        TINY, 3, ["discriminator0", "discriminator1", "discriminator2"]
    )
    shapes = [[tuple(w.shape) for w in n.weights] for n in nets.values()]
    assert shapes[0] == shapes[1] == shapes[2]
    first = [w.numpy() for w in nets["discriminator0"].weights]
    second = [w.numpy() for w in nets["discriminator1"].weights]
    assert any(not np.allclose(a, b) for a, b in zip(first, second))


def test_code_lengths_must_fit_the_gan_code():
    with pytest.raises(ValueError, match="gan_code_dim"):
        style_space.build_networks(TINY.replace(d_style=10, d_content=10), 3)


@pytest.mark.parametrize("block", ["gadn", "wnres"])
def test_generator_from_decoder_draws_what_the_decoder_draws(block):
    """--cond_gan_init=decoder: G(u, v, 0) equals Dec(u * std + mean, [v, 0]) exactly after the fold, w matters
    only a little, and a mismatched G shape is refused; with either residual block."""
    config = TINY.replace(
        cond_gan_init="decoder", ss_gen_blocks=(2, 2), generator_output="soft_clip", ss_block=block
    )
    keras.utils.set_random_seed(3)
    nets = style_space.build_networks(config, 4, ["decoder", "generator"])
    rng = np.random.default_rng(0)
    mean, std = (
        rng.normal(size=4).astype(np.float32),
        rng.uniform(0.5, 2, size=4).astype(np.float32),
    )
    u, v = rng.normal(size=(5, 4)).astype(np.float32), rng.normal(size=(5, 8)).astype(np.float32)
    w = np.zeros((5, 4), np.float32)
    before = nets["generator"]([u, v, w]).numpy()
    style_space.generator_from_decoder(nets["generator"], nets["decoder"], mean, std, 4, 8)
    expected = nets["decoder"](
        [u * std + mean, np.concatenate([v, np.zeros((5, 8), np.float32)], 1)]
    ).numpy()
    got = nets["generator"]([u, v, w]).numpy()
    np.testing.assert_allclose(got, expected, atol=1e-5)
    assert np.abs(before - expected).mean() > 0.05  # a fresh G draws something else
    noisy = nets["generator"]([u, v, rng.normal(size=(5, 4)).astype(np.float32)]).numpy()
    assert 0 < np.abs(noisy - got).mean() < 0.1
    with pytest.raises(ValueError, match="cond_gan_init=decoder"):
        style_space.build_networks(TINY.replace(cond_gan_init="decoder"), 4, ["generator"])
