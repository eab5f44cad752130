"""GADN read as the paper writes it: L_cont's target, stage 1's a', random styles, Figures 3 and 5 (issue 13)."""

import json

import numpy as np
import pytest
import tensorflow as tf
from conftest import tiny_config
from PIL import Image
from test_gadn_stages import TINY, make_stage

from tf_gadn import losses
from tf_gadn.evaluation import visualize
from tf_gadn.gadn import figures
from tf_gadn.gadn.common import normal_sampler, sample_code, style_distribution
from tf_gadn.gadn.networks import StyleTable
from tf_gadn.training import checkpoints, loop
from tf_gadn.training.config import Config
from tf_gadn.training.registry import stage_class


def test_content_loss_compares_with_the_code_g_received(tiny_dataset):
    """L_cont = ||E(G(c, S(a'))) - c||^2 with c the sampled code G was fed ('sample', the paper) or E(x)'s mean."""
    stage, data = make_stage("gadn_stage2", tiny_dataset)
    for target in (
        "sample",
        "mean",
    ):  # one stage, two steps: the flag is read when the step runs (eager)
        stage.config = TINY.replace(content_loss_target=target)
        batch = next(data)
        eps_content, eps_other = tf.split(
            batch["noise"], [TINY.content_dim, TINY.style_dim], axis=-1
        )
        content, content_mean, _ = sample_code(stage.encoder, batch["image"], eps_content)
        style_other, _, _ = sample_code(stage.style_table, batch["other_artist"], eps_other)
        fake = stage.generator([content, style_other])
        expected = {
            name: float(tf.reduce_mean(losses.content_loss(stage.encoder(fake)[0], code)))
            for name, code in (("sample", content), ("mean", content_mean))
        }
        assert abs(expected["sample"] - expected["mean"]) > 1e-3 * expected["mean"]  # it can tell
        for metric in stage.tracker.values():
            metric.reset_state()
        got = float(stage.train_step(batch)["content"])
        assert got == pytest.approx(expected[target], rel=1e-4), (target, got, expected)


def test_unknown_content_loss_target_is_refused(tiny_dataset):
    with pytest.raises(ValueError, match="content_loss_target"):
        make_stage("gadn_stage2", tiny_dataset, TINY.replace(content_loss_target="median"))


@pytest.mark.parametrize("choice, ever_equal", [("any", True), ("different", False)])
def test_stage1_other_artist_reaches_the_pipeline(tiny_dataset, choice, ever_equal):
    """'any' is L_C's a' ~ p(a) (a' = a for about 1 in 4 of 4 balanced artists); 'different' never draws a' = a."""
    config = TINY.replace(data_dir=str(tiny_dataset), stage1_other_artist=choice)
    cls = stage_class("gadn_stage1")
    pairs = [
        (b["artist"].numpy(), b["other_artist"].numpy())
        for b in loop.eval_dataset(config, cls, batch_size=16)
    ]
    same = np.mean(np.concatenate([a == other for a, other in pairs]))
    assert (same > 0.05) if ever_equal else (same == 0), same
    with pytest.raises(ValueError, match="stage1_other_artist"):
        cls.distinct_other_artist(config.replace(stage1_other_artist="others"))


def _write_run_from_before_the_flags(run_dir, config: Config) -> list[dict]:
    """A run directory whose config.json predates --content_loss_target and --stage1_other_artist; its artists."""
    old = json.loads(json.dumps(config.__dict__))
    for name in ("content_loss_target", "stage1_other_artist"):
        del old[name]
    (run_dir / "config.json").write_text(json.dumps(old))
    artists = [{"name": "a", "count": 1}]
    (run_dir / "artists.json").write_text(json.dumps(artists))
    return artists


def test_runs_from_before_the_two_flags_keep_what_they_trained(tmp_path):
    """A config.json without the fields reads as the older code's choices (mean, different), not the new defaults."""
    artists = _write_run_from_before_the_flags(tmp_path, Config())
    loaded, _ = checkpoints.load_run_info(str(tmp_path))
    assert (loaded.content_loss_target, loaded.stage1_other_artist) == ("mean", "different")
    checkpoints.check_run_dir(str(tmp_path), loaded, artists)
    with pytest.raises(checkpoints.RunMismatchError, match="content_loss_target"):
        checkpoints.check_run_dir(str(tmp_path), Config(), artists)


def test_an_older_style_space_run_is_not_read_with_gadn_choices(tmp_path):
    """The implied older choices are GADN's: a style-space run from before the flags reruns with today's defaults."""
    artists = _write_run_from_before_the_flags(tmp_path, Config(method="style_space"))
    loaded, _ = checkpoints.load_run_info(str(tmp_path))
    checkpoints.check_run_dir(str(tmp_path), Config(method="style_space"), artists)
    assert (loaded.content_loss_target, loaded.stage1_other_artist) == ("sample", "any")


def test_paper_and_demo_flagfiles_say_which_reading_they_train():
    paper = tiny_config("../gadn/paper")
    demo = tiny_config("../gadn/demo")
    assert (paper.content_loss_target, paper.stage1_other_artist) == ("sample", "any")
    assert (demo.content_loss_target, demo.stage1_other_artist) == ("mean", "different")
    assert (paper.style_lr_scale, demo.style_lr_scale) == ("none", "presence")


def test_style_distribution_is_the_normal_fitted_to_the_style_table():
    table = StyleTable(5, 3)
    means = np.random.default_rng(0).standard_normal((5, 3)).astype(np.float32)
    table.mean.assign(means)
    stats = style_distribution(table, 5)
    np.testing.assert_allclose(stats["mean"], means.mean(0), atol=1e-6)
    np.testing.assert_allclose(stats["cov"], np.cov(means, rowvar=False), atol=1e-6)
    draws = normal_sampler(stats)(np.random.default_rng(1), 20000)
    np.testing.assert_allclose(draws.mean(0), stats["mean"], atol=0.05)
    np.testing.assert_allclose(np.cov(draws, rowvar=False), stats["cov"], atol=0.1)
    assert not any(np.allclose(draws[0], row, atol=1e-2) for row in means)  # a new style


def test_sample_random_style_draws_content_and_style_from_their_seeds(tiny_gadn_export):
    served = tf.saved_model.load(str(tiny_gadn_export / "gadn" / "1"))
    sample = served.signatures["sample_random_style"]
    seeds = tf.constant([5, 5, 6], tf.int64)
    out = sample(seed=seeds, style_seed=tf.constant([1, 2, 1], tf.int64))
    content, style = out["content"].numpy(), out["style"].numpy()
    np.testing.assert_array_equal(content[0], content[1])  # same content seed, same content
    assert not np.allclose(style[0], style[1])
    np.testing.assert_array_equal(style[0], style[2])  # same style seed, same style
    # sample's content for the same seed: the two signatures draw contents alike
    plain = served.signatures["sample"](artist_id=tf.constant([0, 0, 0]), seed=seeds)
    np.testing.assert_allclose(plain["content"], content, atol=1e-6)
    assert out["image"].dtype == tf.uint8 and out["image"].shape == (3, 32, 32, 3)


def test_random_styles_spread_like_the_style_table(tiny_gadn_run, tiny_gadn_export):
    served = tf.saved_model.load(str(tiny_gadn_export / "gadn" / "1"))
    styles = served.signatures["sample_random_style"](
        seed=tf.zeros([2000], tf.int64), style_seed=tf.range(2000, dtype=tf.int64)
    )["style"].numpy()
    _, artists, networks = checkpoints.load_trained(str(tiny_gadn_run))
    stats = style_distribution(networks["style_table"], len(artists))
    spread = np.sqrt(np.diag(stats["cov"])) + 1e-3
    assert np.abs((styles.mean(0) - stats["mean"]) / spread).max() < 0.15  # 5 standard errors: 0.11
    assert np.abs(styles.std(0) / spread - 1).max() < 0.15


def cells(png, size=32, gap=2):
    height, width, _ = np.asarray(Image.open(png)).shape
    return (height + gap) // (size + gap), (width + gap) // (size + gap)


def test_figure3_shows_the_artists_then_random_styles(tiny_gadn_run, tmp_path):
    written = figures.write_figures(str(tiny_gadn_run), ["3"], str(tmp_path))
    assert cells(written["figure3"]) == (1 + 3, figures.COLUMNS)  # 4 artists fill one row


def test_figure5_has_the_vae_and_mlp_columns_and_our_stage1(tiny_gadn_run, tmp_path):
    """Columns: input | VAE | MLP correct | MLP zero | ours correct | ours zero; ours are stage-1 reconstructions."""
    written = figures.write_figures(
        str(tiny_gadn_run),
        ["5"],
        str(tmp_path),
        vae_model_dir=str(tiny_gadn_run),
        mlp_model_dir=str(tiny_gadn_run),
    )
    assert cells(written["figure5"]) == (4, 6)
    config, _, stage1 = checkpoints.load_trained(str(tiny_gadn_run), "gadn_stage1")
    images, artists = figures.one_image_per_artist(config.data_dir, 32, 4)
    assert sorted(artists) == [0, 1, 2, 3]
    picture = np.asarray(Image.open(written["figure5"]))
    ours = visualize.to_uint8_rgb(figures.reconstruct(stage1, images, artists, zero_style=False))
    column = 4 * 34
    np.testing.assert_array_equal(picture[:32, column : column + 32], ours[0])
    _, _, final = checkpoints.load_trained(str(tiny_gadn_run))
    later = visualize.to_uint8_rgb(figures.reconstruct(final, images, artists, zero_style=False))
    assert not np.array_equal(later[0], ours[0])  # stage 2 changed G: the figure took stage 1's


def test_vae_flagfile_is_stage1_without_the_classifier():
    vae = tiny_config("../gadn/paper_ablation_vae")
    assert (vae.stage, vae.lambda_c1, vae.image_size) == ("gadn_stage1", 0.0, 256)
    assert vae.model_dir != tiny_config("../gadn/paper").model_dir
