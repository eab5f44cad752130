"""--cond_gan_init=decoder through the training loop: a fresh GAN stage restores the content VAE's decoder from the
run it inherits and starts drawing exactly what the decoder draws from the same image's codes."""

import numpy as np
import tensorflow as tf
from conftest import tiny_config

from tf_gadn.data import pipeline, records
from tf_gadn.style_space import networks
from tf_gadn.style_space.common import load_style_stats, style_prefix
from tf_gadn.training import checkpoints, loop


def test_fresh_gan_stage_starts_as_the_trained_decoder(
    tiny_dataset, tiny_style_space_run, tmp_path
):
    config = tiny_config(
        "style_space_tiny",
        data_dir=str(tiny_dataset),
        model_dir=str(tmp_path),
        inherit_dir=str(tiny_style_space_run),
        cond_gan_init="decoder",
    )
    artists = records.read_artists(str(tiny_dataset))
    stage, _, ckpt = loop.build_stage(config, "cond_gan", tf.distribute.get_strategy(), artists)
    check = checkpoints.FiniteCheck(stage.networks(), stage.optimizers)
    assert (
        loop._restore_or_inherit(config, stage, ckpt, str(tmp_path / "ckpt"), check) is None
    )  # fresh: inherited
    stage.before_training(
        lambda: loop.eval_dataset(config, type(stage)), str(tmp_path)
    )  # the style statistics

    decoder = networks.build_networks(config, len(artists), ["decoder"])["decoder"]
    checkpoints.restore_networks(str(tiny_style_space_run), "content_vae", {"decoder": decoder})
    mean, std = load_style_stats(str(tiny_style_space_run), config.d_style)
    x = next(
        iter(
            pipeline.make_dataset(
                str(tiny_dataset), global_batch_size=6, color="lab", shuffle=False
            )
        )
    )["image"]
    raw_style = style_prefix(stage.style_encoder, x, config.d_style)
    content = stage.content_encoder(x)[0]
    expected = decoder(
        [
            raw_style,
            tf.concat(
                [content[:, : config.d_content], tf.zeros_like(content[:, config.d_content :])],
                axis=1,
            ),
        ]
    )
    noise = tf.zeros([6, config.gan_code_dim - config.d_style - config.d_content])
    got = stage.generator([stage.style_code(x), stage.content_code(x), noise])
    np.testing.assert_allclose(got.numpy(), expected.numpy(), atol=1e-4)
