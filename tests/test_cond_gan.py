"""Conditional GAN (style-space eqs. 5-9, Section 5.2): the consortium sees the right patches at the right scales,
and one step trains G and all three discriminators while S and Enc stay frozen."""

import keras
import numpy as np
import pytest
import tensorflow as tf
from test_content_vae import TINY

from tf_gadn import losses
from tf_gadn.data import pipeline, records
from tf_gadn.style_space.cond_gan import (
    CondGanStage,
    consortium_scales,
    consortium_views,
    patch_uniform_dim,
    random_patches,
)


def test_consortium_scales_are_the_papers_and_never_upsample():
    assert consortium_scales(256, 64) == [(64, 1), (128, 4), (256, 16)]  # Section 5.2 exactly
    assert consortium_scales(64, 32) == [(32, 1), (64, 4), (64, 16)]  # capped at the training size
    assert patch_uniform_dim(256, 64) == 2 * (1 + 4 + 16)
    with pytest.raises(ValueError, match="exceeds image_size"):
        consortium_scales(32, 64)


def test_random_patches_are_exact_crops_at_the_drawn_corners():
    size, patch = 16, 4
    rows, cols = np.meshgrid(np.arange(size), np.arange(size), indexing="ij")
    image = np.stack([rows, cols, rows * 0], axis=-1).astype(np.float32)[None].repeat(2, axis=0)
    # image 0: corners (0, 0) and (12, 12) (u -> 1 is the last position); image 1: corner (6, 3) twice
    uniform = np.array(
        [[0.0, 0.9999, 0.0, 0.9999], [6.5 / 13, 6.5 / 13, 3.2 / 13, 3.2 / 13]], np.float32
    )
    patches = random_patches(tf.constant(image), tf.constant(uniform), 2, patch).numpy()
    assert patches.shape == (2, 2, patch, patch, 3)
    for b, k, (top, left) in [(0, 0, (0, 0)), (0, 1, (12, 12)), (1, 0, (6, 3)), (1, 1, (6, 3))]:
        np.testing.assert_array_equal(
            patches[b, k], image[b, top : top + patch, left : left + patch]
        )


def test_consortium_views_shapes_and_scale_zero_is_the_downsampled_image():
    images = tf.random.stateless_uniform([3, 32, 32, 3], seed=[1, 2])
    uniform = tf.random.stateless_uniform([3, patch_uniform_dim(32, 8)], seed=[3, 4])
    views = consortium_views(images, uniform, 32, 8)
    assert [tuple(v.shape) for v in views] == [(3, 1, 8, 8, 3), (3, 4, 8, 8, 3), (3, 16, 8, 8, 3)]
    np.testing.assert_allclose(views[0][:, 0], tf.nn.avg_pool2d(images, 4, 4, "VALID"), atol=1e-6)


def test_gan_losses_have_the_papers_signs():
    logits = tf.constant([-2.0, 0.0, 2.0])
    np.testing.assert_allclose(
        losses.gan_discriminator_real(logits), -np.log(tf.sigmoid(logits)), rtol=1e-5
    )
    np.testing.assert_allclose(
        losses.gan_discriminator_fake(logits), -np.log(1 - tf.sigmoid(logits)), rtol=1e-5
    )
    np.testing.assert_allclose(losses.gan_generator(logits), -np.log(tf.sigmoid(logits)), rtol=1e-5)
    np.testing.assert_allclose(
        losses.consortium_mean([tf.ones([2, 1]), tf.fill([2, 4], 2.0), tf.fill([2, 16], 3.0)]),
        [2.0, 2.0],
    )


def weights(network):
    return [v.numpy().copy() for v in network.weights]


@pytest.mark.parametrize(
    "critic_augment, artist_classifier", [(False, 0.0), (True, 0.0), (False, 1.0)]
)
def test_one_step_moves_g_and_all_three_discriminators_never_s_or_enc(
    tiny_dataset, tmp_path, critic_augment, artist_classifier
):
    config = TINY.replace(
        data_dir=str(tiny_dataset),
        critic_augment=critic_augment,
        cond_gan_artist_classifier=artist_classifier,
    )
    keras.utils.set_random_seed(1)
    stage = CondGanStage(config, [a["count"] for a in records.read_artists(str(tiny_dataset))], 4)
    stage.compile()
    with pytest.raises(FileNotFoundError, match="style_stats"):
        stage.before_training(None, str(tmp_path))
    eval_data = pipeline.make_dataset(
        str(tiny_dataset),
        global_batch_size=32,
        color="lab",
        shuffle=False,
        repeat=False,
        drop_remainder=False,
    )
    codes = np.concatenate(
        [stage.style_encoder(b["image"]).numpy()[:, : config.d_style] for b in eval_data]
    )
    (tmp_path / "style_encoder").mkdir()
    np.savez(tmp_path / "style_encoder" / "style_stats.npz", mean=codes.mean(0), std=codes.std(0))
    stage.before_training(None, str(tmp_path))
    assert np.abs(stage.style_std.numpy() - 1.0).max() > 0  # the statistics were loaded
    batch = next(
        iter(
            pipeline.make_dataset(
                str(tiny_dataset),
                global_batch_size=4,
                color="lab",
                noise_dim=CondGanStage.noise_dim(config),
                uniform_dim=CondGanStage.uniform_dim(config),
            )
        )
    )
    before = {name: weights(net) for name, net in stage.networks().items()}
    metrics = stage.train_step(batch)
    assert all(np.isfinite(float(v)) for v in metrics.values())
    assert ("artist_classifier" in stage.networks()) == (artist_classifier > 0)
    assert ("classifier_adv" in metrics) == (artist_classifier > 0)
    for name, net in stage.networks().items():
        changed = any(not np.array_equal(a, b) for a, b in zip(before[name], weights(net)))
        assert changed == (name not in ("style_encoder", "content_encoder")), name
    grid = stage.sample_grid(batch)
    assert tuple(grid.shape) == (5, 5, 32, 32, 3)  # header row/column + 4 contents x 4 styles
