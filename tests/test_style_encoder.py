"""The metric-learned style encoder (style-space Section 3): its losses equal equations (2), (3) and (10) computed by
hand or by brute force, and a short seeded run on synthetic portraits learns styles that classify held-out images,
cluster by artist (eq. 10 falls), order their dimensions by importance (nested dropout), and leave the statistics and
pruning report later stages and users rely on."""

import json
import os

import numpy as np
import pytest
import tensorflow as tf
from conftest import tiny_config

from tf_gadn import losses, train
from tf_gadn.data import records, synthetic
from tf_gadn.style_space import pruning
from tf_gadn.style_space.common import load_style_stats, read_style_stats
from tf_gadn.training import checkpoints, loop

# 16 artists so that a few dimensions cannot separate them all; t = 1 - 2.56/16 keeps the paper's D(1 - t)
# (512 x 0.005) at D = 16, and lr 2e-3 lets 400 steps get there (numbers in BUILD.md).
TINY = dict(
    stage="style_encoder",
    nested_dropout_t=0.84,
    style_encoder_steps=400,
    style_encoder_batch_size=32,
    style_encoder_lr=2e-3,
    log_every=100,
    checkpoint_every=400,
    sample_every=0,
    ss_nested_baseline=True,
)  # on style_space_tiny.flags
NUM_ARTISTS = 16


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A data set with the paper's test split (16 artists x 40 images: 30 train, 10 test) and a trained stage."""
    data_dir = tmp_path_factory.mktemp("style_data") / "data"
    synthetic.generate_dataset(
        str(data_dir),
        num_artists=NUM_ARTISTS,
        images_per_artist=40,
        image_size=32,
        seed=3,
        progress=False,
    )
    config = tiny_config(
        "style_space_tiny",
        data_dir=str(data_dir),
        model_dir=str(tmp_path_factory.mktemp("style_runs") / "run"),
        **TINY,
    )
    train.run(config)
    return config


# ---- losses ---------------------------------------------------------------------------------------------------------
def test_equation_2_by_hand_with_count_weighting():
    # artist 0 has |X_0| = 1 image, artist 1 has 3; s_0 = 0, s_1 = 2 (D = 1). N = 4, sum |X_i|^2 = 10.
    styles = tf.constant([[0.0], [2.0]])
    codes = tf.constant([[1.0], [1.5]])
    squared = losses.prefix_squared_distances(codes, styles)[..., -1]
    same, diff = losses.representative_style_loss(
        losses.same_style_loss(squared),
        losses.different_style_loss(squared),
        tf.constant([0, 1]),
        [1, 3],
    )
    np.testing.assert_allclose(same.numpy(), [4 * 1 * 1.0 / 10, 4 * 3 * 0.25 / 10], rtol=1e-6)
    np.testing.assert_allclose(
        diff.numpy(), [4 * 3 * np.exp(-1.0) / 6, 4 * 1 * np.exp(-2.25) / 6], rtol=1e-6
    )


def test_equation_2_batch_mean_over_the_data_set_is_the_full_objective():
    rng = np.random.default_rng(0)
    artists = np.array([0, 1, 1, 1, 2, 2])
    counts = np.bincount(artists)
    codes, styles = rng.normal(size=(6, 3)), rng.normal(size=(3, 3))
    dist = np.linalg.norm(codes[:, None] - styles[None], axis=-1)
    same_sum = sum(counts[i] * dist[k, i] ** 2 for k, i in enumerate(artists))
    diff_sum = sum(
        counts[j] * np.exp(-(dist[k, j] ** 2))
        for k, i in enumerate(artists)
        for j in range(3)
        if j != i
    )
    pairs = sum(counts[i] * counts[j] for i in range(3) for j in range(3) if i != j)
    expected = same_sum / (counts**2).sum() + diff_sum / pairs
    squared = losses.prefix_squared_distances(
        tf.constant(codes, tf.float32), tf.constant(styles, tf.float32)
    )[..., -1]
    same, diff = losses.representative_style_loss(
        losses.same_style_loss(squared),
        losses.different_style_loss(squared),
        tf.constant(artists),
        counts,
    )
    assert abs(float(tf.reduce_mean(same + diff)) - expected) < 1e-5 * expected


def test_equation_3_exact_expectation_equals_the_sum_over_prefixes():
    rng = np.random.default_rng(1)
    dim, t = 7, 0.8
    x, y = rng.normal(size=(2, dim)), rng.normal(size=(3, dim))
    h = rng.uniform(0.5, 2.0, size=dim)
    weights = losses.nested_dropout_weights(dim, t).numpy()
    np.testing.assert_allclose(
        weights, [(1 - t) * t ** (d - 1) / (1 - t**dim) for d in range(1, dim + 1)], rtol=1e-6
    )
    assert abs(weights.sum() - 1.0) < 1e-6
    prefix = losses.prefix_squared_distances(tf.constant(x, tf.float32), tf.constant(y, tf.float32))
    for pair_loss, brute in (
        (losses.same_style_loss, lambda s: s**2),
        (losses.different_style_loss, lambda s: np.exp(-(s**2))),
    ):
        got = losses.nested_dropout_loss(
            pair_loss, prefix, weights, tf.constant(h, tf.float32)
        ).numpy()
        want = [
            [
                sum(
                    weights[d - 1]
                    * brute(
                        np.sqrt(h[d - 1] ** 2 + losses.PREFIX_SCALE_FLOOR**2)
                        * np.linalg.norm(x[b, :d] - y[a, :d])
                    )
                    for d in range(1, dim + 1)
                )
                for a in range(3)
            ]
            for b in range(2)
        ]
        np.testing.assert_allclose(got, want, rtol=1e-5)


def test_different_artist_loss_falls_with_distance_and_scales_cannot_collapse():
    squared = tf.constant([[0.0, 0.5, 1.0, 4.0, 9.0]])
    values = losses.different_style_loss(squared).numpy()[0]
    assert (np.diff(values) < 0).all() and values[0] == 1.0
    prefix = tf.constant([[[1.0, 4.0]]])
    weights = losses.nested_dropout_weights(2, 0.995)
    zero = losses.nested_dropout_loss(losses.same_style_loss, prefix, weights, tf.zeros([2]))
    assert (
        zero.numpy().item() > 0.0
    )  # h_d = 0 still leaves a (floored) scale: the code's distances keep mattering
    plus = losses.nested_dropout_loss(
        losses.different_style_loss, prefix, weights, tf.constant([1.5, -0.7])
    )
    minus = losses.nested_dropout_loss(
        losses.different_style_loss, prefix, weights, tf.constant([-1.5, 0.7])
    )
    assert plus.numpy().item() == pytest.approx(minus.numpy().item())
    with pytest.raises(ValueError, match="0 < t < 1"):
        losses.nested_dropout_weights(4, 1.0)


def test_equation_10_closed_form_equals_all_pairs():
    rng = np.random.default_rng(2)
    artists = np.array([0] * 3 + [1] * 5 + [2] * 2)
    codes = rng.normal(size=(10, 4)) + artists[:, None]
    sums = pruning.ArtistSums.empty(3, 4)
    sums.add(codes, artists)
    for d in range(1, 5):
        c = codes[:, :d]
        means = np.stack([c[artists == i].mean(0) for i in range(3)])
        within = ((c - means[artists]) ** 2).sum() / len(c)
        between = [
            ((c[k] - c[m]) ** 2).sum()
            for k in range(10)
            for m in range(10)
            if artists[k] != artists[m]
        ]
        assert sums.variance_ratio()[d - 1] == pytest.approx(within / np.mean(between), rel=1e-9)


def test_nested_dropout_nll_by_hand():
    """Figure 1's nested baseline: x = (1, 2), W = I, b = 0, artist 0, t = 1/2 (D = 2: p(1) = 2/3, p(2) = 1/3).
    Prefix 1 sees logits (1, 0): NLL = log(1 + e^-1); prefix 2 sees (1, 2): NLL = log(1 + e)."""
    logits = losses.prefix_logits(tf.constant([[1.0, 2.0]]), tf.eye(2), tf.zeros([2]))
    np.testing.assert_allclose(logits.numpy()[0], [[1.0, 0.0], [1.0, 2.0]])
    got = losses.nested_dropout_nll(logits, tf.constant([0]), 0.5).numpy()
    want = 2 / 3 * np.log1p(np.exp(-1.0)) + 1 / 3 * np.log1p(np.e)
    np.testing.assert_allclose(got, [want], rtol=1e-6)


# ---- training -------------------------------------------------------------------------------------------------------
def report_of(config) -> dict:
    with open(os.path.join(config.model_dir, "style_encoder", pruning.PRUNING_JSON)) as f:
        return json.load(f)


def test_training_learns_styles_that_classify_held_out_images_and_cluster_by_artist(trained):
    artists = records.read_artists(trained.data_dir)
    stage, _, _ = loop.build_stage(trained, "style_encoder", tf.distribute.get_strategy(), artists)
    initial = pruning.pruning_report(
        stage.networks(),
        pruning.artist_sums(stage.networks(), loop.eval_dataset(trained, type(stage)), NUM_ARTISTS),
        pruning.split_batches(trained, "test"),
        "test",
    )
    final = report_of(trained)
    chance = 1.0 / NUM_ARTISTS
    assert final["split"] == "test" and final["num_images"] == NUM_ARTISTS * 10
    assert initial["metric"]["accuracy"][-1] < 3 * chance
    assert final["metric"]["accuracy"][-1] > 8 * chance  # measured 0.86 (chance 0.0625)
    assert final["baseline"]["accuracy"][-1] > 4 * chance
    assert (
        final["metric"]["variance_ratio"][-1] < 0.5 * initial["metric"]["variance_ratio"][-1]
    )  # 0.10 vs 0.40


def test_nested_dropout_orders_dimensions_by_importance(trained):
    _, _, networks = checkpoints.load_trained(trained.model_dir)
    codes = pruning.encode_split(networks, pruning.split_batches(trained, "test"))
    styles = networks["representative_styles"].styles.numpy()

    def accuracy(columns):
        return pruning.nearest_centre_accuracy(codes["metric"], codes["artist"], styles, columns)

    every, first4 = accuracy(np.arange(16)), accuracy(np.arange(4))
    rng = np.random.default_rng(0)
    random4 = np.mean([accuracy(rng.choice(16, 4, replace=False)) for _ in range(10)])
    # measured: all 0.86, first 4 0.75, random 4 0.56
    assert every - first4 < 0.6 * (every - random4)
    assert first4 - random4 > 0.1


def test_style_statistics_and_pruning_report_are_written(trained):
    stats = read_style_stats(trained.model_dir)
    assert (
        stats["mean"].shape == stats["std"].shape == (trained.style_code_dim,)
        and (stats["std"] > 0).all()
    )
    # every prefix length can be chosen after S is trained (d_style from the pruning curve)
    for d in (1, trained.d_style, trained.style_code_dim):
        mean, std = load_style_stats(trained.model_dir, d)
        np.testing.assert_array_equal(mean, stats["mean"][:d])
        assert std.shape == (d,)
    assert int(stats["count"]) == NUM_ARTISTS * 30
    report = report_of(trained)
    assert report["dims"] == [1, 2, 4, 8, 16]
    full = report["metric"]["accuracy"][-1]
    allowed = min(report["tolerance"], 1.0 - full)  # never more than the full code's error rate
    for d, acc in zip(report["dims"], report["metric"]["accuracy"]):
        if (
            d < report["d_style"]
        ):  # the rule takes the smallest d within tolerance of all-D accuracy
            assert acc < full - allowed - 1e-9
    chosen = report["dims"].index(report["d_style"])
    assert report["metric"]["accuracy"][chosen] >= full - allowed - 1e-9
    with open(os.path.join(trained.model_dir, "style_encoder", pruning.PRUNING_PNG), "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"


def test_pruning_tool_restores_the_run_and_reproduces_the_report(trained, tmp_path, capsys):
    again = pruning.run(
        trained.model_dir, out_dir=str(tmp_path)
    )  # what `python -m tf_gadn.pruning` calls
    assert "| d | accuracy, metric" in capsys.readouterr().out
    assert (tmp_path / pruning.PRUNING_PNG).exists() and (tmp_path / pruning.PRUNING_JSON).exists()
    expected = report_of(trained)
    for name in pruning.NETWORKS:
        np.testing.assert_allclose(again[name]["accuracy"], expected[name]["accuracy"], atol=1e-6)
        np.testing.assert_allclose(
            again[name]["variance_ratio"], expected[name]["variance_ratio"], rtol=1e-4
        )
    assert again["d_style"] == expected["d_style"]


def test_nested_baseline_is_figure_1s_third_curve_and_orders_its_dimensions(trained):
    """--ss_nested_baseline: the classifier trained under the same nested dropout is a curve of its own, and the
    dropout does for it what it does for S: its first dimensions alone classify better than the unordered
    baseline's first dimensions."""
    report = report_of(trained)
    assert report["curves"] == ["metric", "baseline", "baseline_nested"]
    nested, plain = report["baseline_nested"]["accuracy"], report["baseline"]["accuracy"]
    assert nested[-1] > 4 / NUM_ARTISTS
    assert nested[1] > plain[1]  # d = 2; measured 0.68 vs 0.36 (metric 0.36)
