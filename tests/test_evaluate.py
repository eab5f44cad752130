"""Evaluation of a trained GADN: Table 3 protocol, Figure 5, and ground-truth numbers on synthetic data."""

import json

import numpy as np
from PIL import Image

from tf_gadn.gadn import evaluation as evaluate
from tf_gadn.gadn.stage1 import load_content_stats


def test_evaluation_report(tiny_gadn_run, tmp_path):
    report = evaluate.evaluate(str(tiny_gadn_run), out_dir=str(tmp_path))
    accuracy = report["table3"]["G (this run)"]["C2 (this run)"]
    assert 0.0 <= accuracy <= 1.0
    figure = np.asarray(Image.open(report["figure5"]))
    assert figure.shape[1] == 3 * 32 + 2 * 2  # input | correct style | zero style
    truth = report["transfer"]
    for key in (
        "transfer_error",
        "baseline_input_unchanged",
        "baseline_artist_mean_image",
        "baseline_nearest_training_image",
    ):
        assert 0.0 < truth[key] < 3.5, (
            key
        )  # the per-pixel L2 distance of [-1, 1] RGB images is at most 2*sqrt(3)
    assert truth["chance"] == 0.25
    assert (
        truth["artist_accuracy_on_real"] > truth["chance"]
    )  # the feature network itself works on real images
    assert 0.0 <= truth["style_attribution"] <= 1.0
    assert (
        truth["fd_transfer"] > truth["fd_real_floor"] >= 0.0
    )  # a few tiny steps draw nothing like the artists
    assert set(truth["factor_errors"]) >= {"content/hair_cut", "style/outline"}
    assert 0.0 <= report["artist_from_content_code_accuracy"] <= 1.0
    assert json.load(open(tmp_path / "report.json"))["transfer"]["chance"] == 0.25
    assert "Table 3" in evaluate.format_report(report)


def test_table3_counts_each_artist_as_in_training(tiny_gadn_run):
    """A classifier that always answers artist 0 scores exactly artist 0's share of the training set."""
    import tensorflow as tf

    from tf_gadn.training import checkpoints

    _, artists, networks = checkpoints.load_trained(str(tiny_gadn_run))
    counts = [5, 1, 1, 1]

    def always_zero(images):
        return tf.one_hot(tf.zeros(tf.shape(images)[0], tf.int32), 4)

    accuracy = evaluate.table3_accuracy(
        networks, always_zero, load_content_stats(str(tiny_gadn_run)), counts
    )
    assert accuracy == 5 / 8


def test_an_earlier_stage_of_a_finished_run_can_be_measured(tiny_gadn_run):
    """--through_stage=gadn_stage1 rebuilds the generator as stage 1 left it (stage 2 changed it since)."""
    import pytest

    from tf_gadn.training import checkpoints

    _, _, final = checkpoints.load_trained(str(tiny_gadn_run))
    _, _, early = checkpoints.load_trained(str(tiny_gadn_run), through_stage="gadn_stage1")
    assert "classifier2" in final and "classifier2" not in early
    assert any(
        not np.allclose(a.numpy(), b.numpy())
        for a, b in zip(final["generator"].weights, early["generator"].weights)
    )
    with pytest.raises(ValueError):
        checkpoints.load_trained(str(tiny_gadn_run), through_stage="no_such_stage")
