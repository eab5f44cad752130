"""GADN read as the paper writes it: L_cont's target, stage 1's a', random styles, Figures 3 and 5 (issue 13)."""

import json

import numpy as np
import pytest
import tensorflow as tf
from conftest import tiny_config
from test_gadn_stages import TINY, make_stage

from tf_gadn import losses
from tf_gadn.gadn.common import sample_code
from tf_gadn.training import checkpoints, loop
from tf_gadn.training.config import Config
from tf_gadn.training.registry import stage_class


@pytest.mark.parametrize("target", ["sample", "mean"])
def test_content_loss_compares_with_the_code_g_received(tiny_dataset, target):
    """L_cont = ||E(G(c, S(a'))) - c||^2 with c the sampled code G was fed ('sample', the paper) or E(x)'s mean."""
    stage, data = make_stage("gadn_stage2", tiny_dataset, TINY.replace(content_loss_target=target))
    batch = next(data)
    eps_content, eps_other = tf.split(batch["noise"], [TINY.content_dim, TINY.style_dim], axis=-1)
    content, content_mean, _ = sample_code(stage.encoder, batch["image"], eps_content)
    style_other, _, _ = sample_code(stage.style_table, batch["other_artist"], eps_other)
    fake = stage.generator([content, style_other])
    expected = {
        name: float(tf.reduce_mean(losses.content_loss(stage.encoder(fake)[0], code)))
        for name, code in (("sample", content), ("mean", content_mean))
    }
    assert abs(expected["sample"] - expected["mean"]) > 1e-3 * expected["mean"]  # the test can tell
    got = float(tf.function(stage.train_step)(batch)["content"])
    assert got == pytest.approx(expected[target], rel=1e-4), (got, expected)


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


def test_runs_from_before_the_two_flags_keep_what_they_trained(tmp_path):
    """A config.json without the fields reads as the older code's choices (mean, different), not the new defaults."""
    old = {k: v for k, v in json.loads(json.dumps(Config().__dict__)).items()}
    for name in ("content_loss_target", "stage1_other_artist"):
        del old[name]
    (tmp_path / "config.json").write_text(json.dumps(old))
    artists = [{"name": "a", "count": 1}]
    (tmp_path / "artists.json").write_text(json.dumps(artists))
    loaded, _ = checkpoints.load_run_info(str(tmp_path))
    assert (loaded.content_loss_target, loaded.stage1_other_artist) == ("mean", "different")
    checkpoints.check_run_dir(str(tmp_path), loaded, artists)
    with pytest.raises(checkpoints.RunMismatchError, match="content_loss_target"):
        checkpoints.check_run_dir(str(tmp_path), Config(), artists)


def test_paper_and_demo_flagfiles_say_which_reading_they_train():
    paper = tiny_config("../gadn/paper")
    demo = tiny_config("../gadn/demo")
    assert (paper.content_loss_target, paper.stage1_other_artist) == ("sample", "any")
    assert (demo.content_loss_target, demo.stage1_other_artist) == ("mean", "different")
