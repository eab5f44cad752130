"""Content VAE (style-space eq. 4): the nested-dropout prefix sampler draws the paper's truncated geometric
distribution, and after a short training on tiny data longer content prefixes reconstruct better."""

import json

import keras
import numpy as np
import pytest
import tensorflow as tf
from conftest import tiny_config
from PIL import Image

from tf_gadn import losses
from tf_gadn.data import pipeline, records
from tf_gadn.style_space.content_vae import (
    ContentVaeStage,
    keep_prefix,
    sample_prefix_length,
    suggest_prefix,
)
from tf_gadn.training import loop

TINY = tiny_config("style_space_tiny")


@pytest.mark.parametrize("t, dim", [(0.8, 16), (0.995, 512)])
def test_prefix_sampler_matches_truncated_geometric(t, dim):
    draws = 40_000
    uniform = tf.random.stateless_uniform([draws], seed=[3, 4])
    lengths = sample_prefix_length(uniform, t, dim).numpy()
    assert lengths.min() >= 1 and lengths.max() <= dim
    d = np.arange(1, dim + 1)
    pmf = (1 - t) * t ** (d - 1) / (1 - t**dim)  # the paper's p(d), eqs. 3-4
    # Chi-square on 16 equal-width bins of d (bins of the pmf for dim=16): 15 dof, 0.1% critical value 37.7.
    edges = np.linspace(0, dim, 17).astype(int)
    expected = np.array([pmf[a:b].sum() for a, b in zip(edges[:-1], edges[1:])]) * draws
    observed = np.array(
        [np.sum((lengths > a) & (lengths <= b)) for a, b in zip(edges[:-1], edges[1:])]
    )
    chi2 = float(np.sum((observed - expected) ** 2 / expected))
    assert chi2 < 37.7, (chi2, observed, expected.round())
    assert abs(lengths.mean() - np.sum(d * pmf)) < 0.03 * np.sum(d * pmf)


def test_keep_prefix_zeroes_the_suffix():
    kept = keep_prefix(tf.ones([2, 5]), tf.constant([1, 4])).numpy()
    np.testing.assert_array_equal(kept, [[1, 0, 0, 0, 0], [1, 1, 1, 1, 0]])


def test_bad_dropout_t_is_rejected():
    with pytest.raises(ValueError, match="nested dropout t"):
        sample_prefix_length(0.5, 1.0, 16)


def test_longer_prefixes_reconstruct_better_after_training(tiny_dataset, tmp_path):
    config = TINY.replace(data_dir=str(tiny_dataset), content_vae_lr=2e-3)
    keras.utils.set_random_seed(1)
    stage = ContentVaeStage(
        config, [a["count"] for a in records.read_artists(str(tiny_dataset))], 8
    )
    stage.compile()
    data = iter(
        pipeline.make_dataset(
            str(tiny_dataset),
            global_batch_size=8,
            color="lab",
            seed=1,
            cache=True,
            noise_dim=config.content_code_dim,
            uniform_dim=1,
        )
    )
    step = tf.function(stage.train_step)
    for _ in range(200):
        metrics = step(next(data))
    assert np.isfinite(float(metrics["objective"]))

    make_eval = lambda: loop.eval_dataset(config, ContentVaeStage)  # noqa: E731
    stage.after_training(make_eval, str(tmp_path))
    report = json.loads((tmp_path / "content_vae" / "content_pruning.json").read_text())
    curve = report["reconstruction_loss"]["train"]
    assert report["prefix_lengths"] == [1, 2, 4, 8, 16]
    assert curve[-1] < 0.92 * curve[0], (
        curve
    )  # the full code beats its first dimension (untrained: the reverse)
    assert np.mean(curve[2:]) < np.mean(curve[:2]), curve
    assert report["suggested_d_content"] == suggest_prefix(report["prefix_lengths"], curve)
    with Image.open(tmp_path / "content_vae" / "content_pruning.png") as picture:
        assert picture.format == "PNG" and picture.size == (640, 420)


def test_suggested_prefix_is_the_shortest_within_5_percent_of_the_gap():
    assert (
        suggest_prefix([1, 2, 4], [10.0, 1.2, 1.0]) == 2
    )  # 0.2 above the full code, allowance 0.45
    assert suggest_prefix([1, 2, 4], [10.0, 1.5, 1.0]) == 4  # 0.5 > 0.45
    assert suggest_prefix([1, 2, 4], [1.0, 2.0, 3.0]) == 1  # no gain from longer prefixes: keep one


def _one_adversary_step(tiny_dataset, weight: float, bias_on_batch_artist: float):
    """One step from a fixed start (the adversary is built after Enc, so Enc starts the same for any weight), with
    the content classifier's output bias set so that the batch's artist is (+) named or (-) ruled out; the batch is
    four images of one artist. Returns the stage after the step, the step's metrics and the batch."""
    config = TINY.replace(
        data_dir=str(tiny_dataset),
        content_vae_lr=1e-3,
        content_vae_adversary=weight,
        mlp_layers=1,
        mlp_width=16,
    )
    keras.utils.set_random_seed(3)
    stage = ContentVaeStage(config, [16, 16, 16, 16], 4)
    stage.compile()
    if stage.adversary is not None:
        out = stage.adversary.mlp.layers[-1]
        out.bias.assign(np.where(np.arange(4) == 2, bias_on_batch_artist, 0.0).astype(np.float32))
    images = next(
        iter(
            pipeline.make_dataset(
                str(tiny_dataset), global_batch_size=64, color="lab", shuffle=False
            )
        )
    )
    pick = np.flatnonzero(images["artist"].numpy() == 2)[:4]
    rng = np.random.default_rng(0)
    batch = {
        "image": tf.gather(images["image"], pick),
        "artist": tf.gather(images["artist"], pick),
        "noise": tf.constant(rng.standard_normal([4, config.content_code_dim]), tf.float32),
        "uniform": tf.constant(rng.uniform(size=[4, 1]), tf.float32),
    }
    return stage, stage.train_step(batch), batch


def _encoder_weights(stage):
    return [w.numpy() for w in stage.content_encoder.trainable_weights]


def test_content_adversary_pushes_enc_only_while_the_classifier_beats_chance(tiny_dataset):
    """--content_vae_adversary: Enc is paid for the classifier's NLL up to chance (log 4 here) and no further."""
    plain, _, _ = _one_adversary_step(tiny_dataset, 0.0, 0.0)
    named, metrics, _ = _one_adversary_step(
        tiny_dataset, 50.0, 8.0
    )  # NLL ~ 0: code names the artist
    ruled_out, capped, _ = _one_adversary_step(
        tiny_dataset, 50.0, -8.0
    )  # NLL ~ 8 > log 4: past chance
    assert plain.adversary is None and "classifier_nll" not in plain.tracker
    assert float(metrics["classifier_nll"]) < 0.1 and float(capped["classifier_nll"]) > np.log(4)
    assert (
        max(np.abs(a - b).max() for a, b in zip(_encoder_weights(named), _encoder_weights(plain)))
        > 1e-4
    )
    for a, b in zip(_encoder_weights(ruled_out), _encoder_weights(plain)):
        np.testing.assert_allclose(a, b, atol=1e-7)


def test_content_adversary_step_makes_the_code_harder_to_classify(tiny_dataset):
    """Enc moves against the classifier: after one step its code gives the artist away less than after the same step
    with a negligible weight (the classifier's own update is the same in both)."""

    def nll_after(weight):
        stage, _, batch = _one_adversary_step(tiny_dataset, weight, 2.0)
        mean, _ = stage.content_encoder(batch["image"])
        return float(tf.reduce_mean(losses.nll(stage.adversary(mean), batch["artist"])))

    assert nll_after(1000.0) > nll_after(1e-6) + 0.05
