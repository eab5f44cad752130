"""Pruning tools (style-space Section 6.1, Figure 1): prefix lengths, nearest-centre accuracy, the d_style rule, the
report files, and the refusal to call train numbers held-out ones when a data set has no test split."""

import json

import numpy as np
import pytest
from conftest import synthetic_set

from tf_gadn.style_space import pruning


def test_prefix_lengths_double_up_to_the_code_length():
    assert pruning.prefix_lengths(16) == [1, 2, 4, 8, 16]
    assert pruning.prefix_lengths(24) == [1, 2, 4, 8, 16, 24]
    assert pruning.prefix_lengths(1) == [1]
    with pytest.raises(ValueError):
        pruning.prefix_lengths(0)


def test_nearest_centre_accuracy_uses_only_the_given_columns():
    centres = np.array([[0.0, 0.0], [0.0, 10.0]])
    codes = np.array([[5.0, 0.5], [-5.0, 9.0]])  # column 0 carries nothing, column 1 everything
    artists = np.array([0, 1])
    assert pruning.nearest_centre_accuracy(codes, artists, centres, [1]) == 1.0
    assert (
        pruning.nearest_centre_accuracy(codes, artists, centres, [0]) == 0.5
    )  # ties go to the first centre


def test_d_style_rule_picks_the_smallest_d_within_tolerance_of_all_dimensions():
    dims = [1, 2, 4, 8, 16, 32, 64]
    accuracy = [0.1, 0.3, 0.6, 0.75, 0.79, 0.80, 0.81]
    assert pruning.choose_d_style(dims, accuracy, tolerance=0.02) == 16
    assert pruning.choose_d_style(dims, accuracy, tolerance=0.10) == 8
    assert pruning.choose_d_style(dims, accuracy, tolerance=0.0) == 64


def test_d_style_rule_never_allows_more_than_the_full_codes_error():
    """The portraits' mirrored-drawings S: 4 dimensions name 98.8% of test drawings, 8 all of them: the absolute 2
    points alone would keep 4; the tolerance capped at the full code's error (0) keeps 8. Near 97% it is 2 points."""
    dims = [1, 2, 4, 8, 16, 32]
    assert pruning.choose_d_style(dims, [0.49, 0.84, 0.9875, 1.0, 1.0, 1.0]) == 8
    assert pruning.choose_d_style(dims, [0.09, 0.27, 0.57, 0.81, 0.955, 0.97]) == 16
    assert pruning.choose_d_style(dims, [0.09, 0.27, 0.57, 0.81, 0.955, 0.99]) == 32


def test_artist_sums_give_class_means_and_overall_statistics():
    sums = pruning.ArtistSums.empty(2, 2)
    sums.add(np.array([[1.0, 2.0], [3.0, 2.0], [10.0, 0.0]]), np.array([0, 0, 1]))
    np.testing.assert_allclose(sums.class_means(), [[2.0, 2.0], [10.0, 0.0]])
    mean, std = sums.mean_and_std()
    np.testing.assert_allclose(mean, [14 / 3, 4 / 3])
    np.testing.assert_allclose(std, np.array([[1.0, 2.0], [3.0, 2.0], [10.0, 0.0]]).std(axis=0))
    with pytest.raises(ValueError, match="no image"):
        pruning.ArtistSums.empty(3, 2).class_means()


def test_report_files_and_table(tmp_path):
    report = {
        "split": "test",
        "num_images": 20,
        "num_artists": 4,
        "chance": 0.25,
        "dims": [1, 2, 4],
        "metric": {"accuracy": [0.5, 0.8, 0.9], "variance_ratio": [0.3, 0.2, 0.15]},
        "baseline": {"accuracy": [0.3, 0.7, 0.95], "variance_ratio": [0.4, 0.35, 0.3]},
        "tolerance": 0.02,
        "rule": "r",
        "d_style": 4,
    }
    paths = pruning.write_report(report, str(tmp_path))
    with open(paths["json"]) as f:
        assert json.load(f) == report
    with open(paths["png"], "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"
    assert (tmp_path / "pruning_accuracy.png").exists() and (
        tmp_path / "pruning_variance_ratio.png"
    ).exists()
    table = pruning.markdown_table(report)
    rows = [line for line in table.splitlines() if line.startswith("| ") and line[2].isdigit()]
    assert [row.split(" | ")[0] for row in rows] == ["| 1", "| 2", "| 4"] and "d_style = 4" in table


def test_a_data_set_without_test_images_is_measured_on_train_only_when_asked(tmp_path):
    data = synthetic_set(tmp_path / "no_test", num_artists=2, images_per_artist=2)
    assert not pruning.has_images(str(data), "test") and pruning.has_images(str(data), "train")
    with pytest.raises(ValueError, match="--test_split.*--split train"):
        pruning.evaluation_split(str(data))
    assert pruning.evaluation_split(str(data), "train") == "train"
