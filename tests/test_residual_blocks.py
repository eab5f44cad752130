"""Both residual blocks of the style-space networks at the paper's size: parameter counts and output shapes equal the
derivation written out below (and in NOTES/BUILD.md), [13]'s block starts as its shortcut, Table 1's block counts
include the resampling block, and a config.json written before that counting builds the same networks."""

import os

import keras
import numpy as np
import pytest
import tensorflow as tf
from conftest import REPO, tiny_config

from tf_gadn.nn.blocks import TrunkSpec, WeightNormResidualBlock
from tf_gadn.style_space import networks as style_space
from tf_gadn.training.config import Config, upgrade_stored

PAPER = Config(method="style_space")  # defaults are Table 1 at 256 px


# ---- the derivation (counts of trainable numbers, one function per block kind) ---------------------------------------
def gadn_block(c_in, c, resample):
    """GADN's block with weight norm: one 3x3 conv (kernel, bias, gain); a 1x1 projection (same) when resampling."""
    params = 9 * c_in * c + 2 * c
    if resample != "none" or c_in != c:
        params += c_in * c + 2 * c
    return params


def wnres_block(c_in, c, resample):
    """[13]: two strict convs (kernels only), a TPReLU (slope, translation) between and after, the addition's two
    weights per channel, a strict 1x1 projection when the channel count changes. 'down': 4x4 first conv."""
    if resample == "up":
        convs = 9 * c_in * c_in + 9 * c_in * c
        inner = 2 * c_in
    else:
        convs = (16 if resample == "down" else 9) * c_in * c + 9 * c * c
        inner = 2 * c
    projection = c_in * c if c_in != c else 0
    return convs + inner + projection + 2 * c + 2 * c


BLOCK = {"gadn": gadn_block, "wnres": wnres_block}


def affine_dense(n_in, n_out, normalised):
    return n_in * n_out + n_out + (n_out if normalised else 0)


def down_trunk(block, channels, extra, image_channels=3):
    total, c_in = 0, image_channels
    for c, n in zip(channels, extra):
        total += BLOCK[block](c_in, c, "down") + n * BLOCK[block](c, c, "none")
        c_in = c
    return total


def dense_then_activation(block, n_in, n_out):
    """A trunk's F layer: affine weight norm (gain, bias) and, for [13], a TPReLU after it."""
    return affine_dense(n_in, n_out, True) + (2 * n_out if block == "wnres" else 0)


def up_trunk(block, channels, extra, code, bottom, fc=0):
    total, width = 0, code
    if fc:
        total += dense_then_activation(block, width, fc)
        width = fc
    total += dense_then_activation(block, width, bottom * bottom * channels[-1])
    for level in reversed(range(len(channels))):
        c = channels[level]
        total += extra[level] * BLOCK[block](c, c, "none")
        total += BLOCK[block](c, channels[max(level - 1, 0)], "up")
    return total + 9 * channels[0] * 3 + 3 + 3  # to_image: affine weight-normalised 3x3 conv


def expected(config, name, block):
    flat = lambda channels, size: (size // 2 ** len(channels)) ** 2 * channels[-1]  # noqa: E731
    wn_heads = (
        block == "wnres"
    )  # [13] normalises the output layers (affine form); GADN's block keeps them plain
    if name == "style_encoder":
        ch = config.ss_style_channels
        trunk = down_trunk(block, ch, [b - 1 for b in config.ss_style_blocks])
        return trunk + affine_dense(flat(ch, config.image_size), config.style_code_dim, True)
    if name == "content_encoder":
        ch, fc = config.ss_vae_channels, config.ss_vae_fc_width
        trunk = down_trunk(block, ch, [b - 1 for b in config.ss_vae_blocks])
        trunk += dense_then_activation(block, flat(ch, config.image_size), fc)
        return trunk + 2 * affine_dense(fc, config.content_code_dim, wn_heads)
    if name == "generator":
        ch = config.ss_gen_channels
        bottom = config.image_size // 2 ** len(ch)
        return up_trunk(
            block, ch, [b - 1 for b in config.ss_gen_blocks], config.gan_code_dim, bottom
        )
    if name == "discriminator0":
        ch = config.ss_disc_channels
        trunk = down_trunk(block, ch, [b - 1 for b in config.ss_disc_blocks])
        return trunk + affine_dense(flat(ch, config.ss_disc_size), 1, wn_heads)
    raise KeyError(name)


@pytest.mark.parametrize("block", ["wnres", "gadn"])
def test_paper_size_networks_match_the_derivation(block):
    config = PAPER.replace(ss_block=block)
    names = ["style_encoder", "content_encoder", "generator", "discriminator0"]
    nets = style_space.build_networks(config, 10, names)
    for name in names:
        assert nets[name].count_params() == expected(config, name, block), name
    x = tf.zeros([1, 256, 256, 3])
    assert nets["style_encoder"](x).shape == (1, 512)
    mean, std = nets["content_encoder"](x)
    assert mean.shape == std.shape == (1, 512)
    assert nets["discriminator0"](tf.zeros([2, 64, 64, 3])).shape == (2,)
    # Table 1's counts include the resampling block: S has 5 blocks, G 6 x 2 = 12.
    blocks = lambda net: [  # noqa: E731
        layer.name for layer in net.trunk.layers if layer.name.startswith("level")
    ]
    assert len(blocks(nets["style_encoder"])) == 5
    assert len(blocks(nets["generator"])) == 12


def test_paper_size_generator_draws_images():
    g = style_space.build_networks(PAPER.replace(ss_block="wnres"), 10, ["generator"])["generator"]
    out = g([tf.zeros([1, 32]), tf.zeros([1, 128]), tf.ones([1, 352])])
    assert out.shape == (1, 256, 256, 3)


@pytest.mark.parametrize("resample, c_in, c", [("none", 8, 8), ("down", 4, 8), ("up", 8, 4)])
def test_wnres_block_starts_as_its_shortcut(resample, c_in, c):
    """[13] initialises the addition at (residual 0, shortcut 1): the block's output is its shortcut (through the
    block's output activation), whatever the convolutions' random weights."""
    block = WeightNormResidualBlock(c, resample)
    x = tf.random.stateless_normal([2, 8, 8, c_in], seed=(1, 2))
    out = block(x).numpy()
    resampled = tf.repeat(tf.repeat(x, 2, axis=1), 2, axis=2) if resample == "up" else x
    np.testing.assert_allclose(out, block.output_activation(block.shortcut(x)).numpy(), atol=1e-5)
    branch = block.second(block.inner_activation(block.first(resampled)))
    assert float(tf.reduce_mean(tf.abs(branch))) > 0.01  # the branch is there, only weighted 0
    block.addition.residual_weight.assign(tf.ones([c]))
    assert np.abs(block(x).numpy() - out).mean() > 1e-3  # and learning that weight lets it in


def test_wnres_convolutions_are_strict():
    """No gain and no bias in the block's convolutions: w = v / ||v|| exactly."""
    block = WeightNormResidualBlock(8, "down")
    block(tf.zeros([1, 8, 8, 4]))
    for layer in (block.first, block.second, block.projection):
        assert layer.g is None and not layer.layer.use_bias
    names = sorted(w.path.split("/")[-1] for w in block.weights)
    assert names.count("kernel") == 3 and "bias" not in names and "g" not in names


def test_block_counts_must_include_the_resampling_block():
    with pytest.raises(ValueError, match=">= 1"):
        style_space.style_spec(PAPER.replace(ss_style_blocks=(1, 0, 1, 1, 1)))
    old_meaning = PAPER.replace(ss_blocks_include_resampling=False, ss_style_blocks=(0, 0, 0, 0, 0))
    assert style_space.style_spec(old_meaning) == style_space.style_spec(PAPER)


def test_old_config_json_builds_the_same_networks():
    """A config.json without ss_blocks_include_resampling counted blocks after the resampling one."""
    tiny = tiny_config("style_space_tiny")
    stored = {
        "method": "style_space",
        **{
            name: [b - 1 for b in getattr(tiny, name)]
            for name in ("ss_style_blocks", "ss_vae_blocks", "ss_gen_blocks", "ss_disc_blocks")
        },
    }
    upgraded = upgrade_stored(stored)
    assert upgraded["ss_blocks_include_resampling"] is True
    for name in ("ss_style_blocks", "ss_vae_blocks", "ss_gen_blocks", "ss_disc_blocks"):
        assert tuple(upgraded[name]) == tuple(getattr(tiny, name))
    gadn = upgrade_stored({"method": "gadn"})  # GADN's blocks are not Table 1's: never rewritten
    assert "ss_blocks_include_resampling" not in gadn and "ss_style_blocks" not in gadn
    new = upgrade_stored({**stored, "ss_blocks_include_resampling": True})
    assert new["ss_style_blocks"] == stored["ss_style_blocks"]  # a new file is read as written


def test_trunk_spec_refuses_an_unknown_block():
    with pytest.raises(ValueError, match="block must be one of"):
        TrunkSpec(32, (8,), (0,), block="resnet")


def test_style_encoder_stage_trains_with_the_wnres_block_and_the_nested_baseline(
    tiny_dataset, tmp_path
):
    """S, its baseline and the nested baseline train on [13]'s block in bfloat16 (as the demo would) and every
    logged number stays finite. (The later stages' networks are shape-tested above and G's decoder start in
    test_style_space_networks; a whole chain costs minutes on loaded cores.)"""
    from tf_gadn import train

    config = tiny_config(
        "style_space_tiny",
        data_dir=str(tiny_dataset),
        model_dir=str(tmp_path / "run"),
        stage="style_encoder",
        ss_block="wnres",
        ss_nested_baseline=True,
        mixed_precision=True,
        style_encoder_steps=2,
        sample_every=0,
    )
    try:
        metrics = train.run(config)["style_encoder"]
    finally:
        keras.mixed_precision.set_global_policy(
            "float32"
        )  # the run sets it globally; later tests build in float32
    assert metrics and all(np.isfinite(v) for v in metrics.values())
    assert "nested_classifier_nll" in metrics


def flagfile_config(path: str) -> Config:
    from absl import flags

    from tf_gadn.training import config as config_module

    flag_values = flags.FlagValues()
    config_module.define_flags(flag_values)
    flag_values(["tests", f"--flagfile={path}"])
    return Config.from_flags(flag_values)


def test_paper_flags_ask_for_13s_block_and_the_demo_keeps_its_networks():
    paper = flagfile_config(os.path.join(REPO, "configs/style_space/paper.flags"))
    assert paper.ss_block == "wnres" and paper.ss_nested_baseline
    assert style_space.style_spec(paper).blocks == (
        0,
        0,
        0,
        0,
        0,
    )  # Table 1's "1": the stride-2 block alone
    assert style_space.generator_spec(paper).blocks == (1,) * 6  # G's "2": one more
    demo = flagfile_config(os.path.join(REPO, "configs/style_space/demo.flags"))
    assert demo.ss_block == "gadn" and not demo.ss_nested_baseline
    # the demo's trained run (runs/style_space_demo) has one stride-1 block after each stride-2 block
    for spec in (style_space.style_spec(demo), style_space.vae_spec(demo)):
        assert spec.blocks == (1, 1, 1, 1)
    assert style_space.discriminator_spec(demo).blocks == (1, 1, 1)
