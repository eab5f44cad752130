"""The style-space chain end to end: the train CLI runs style_encoder -> content_vae -> cond_gan on the tiny flagfile,
then the exploration figures (Figures 3-7) are real PNGs of the sizes their layouts promise, and the style-space
evaluation reports its four probe numbers."""

import json

import numpy as np
import pytest
from PIL import Image

from tf_gadn.data import records
from tf_gadn.evaluation import visualize
from tf_gadn.style_space import evaluation as evaluate_style_space
from tf_gadn.style_space import explore

SIZE, GAP = 32, 2  # configs/test/style_space_tiny.flags: 32 px; visualize.tile's gap


def test_train_cli_runs_the_whole_style_space_chain(tiny_style_space_run):
    for stage in ("style_encoder", "content_vae", "cond_gan"):
        assert (tiny_style_space_run / stage / "DONE").exists(), stage
    assert (tiny_style_space_run / "style_encoder" / "style_stats.npz").exists()
    assert (
        tiny_style_space_run / "cond_gan" / "metrics.csv"
    ).exists()  # the GAN's transfers measured in training
    assert (
        tiny_style_space_run / "explore" / "random_styles.png"
    ).exists()  # cond_gan's after-training figures
    pruning = json.loads(
        (tiny_style_space_run / "content_vae" / "content_pruning.json").read_text()
    )
    assert pruning["prefix_lengths"] == [1, 2, 4, 8, 16]
    with Image.open(
        tiny_style_space_run / "style_x_content.png"
    ) as grid:  # header + 8 contents x 8 styles
        assert grid.size == (9 * SIZE + 8 * GAP, 9 * SIZE + 8 * GAP)


def side(cells: int) -> int:
    return cells * SIZE + (cells - 1) * GAP


def test_exploration_figures_are_pngs_of_their_layouts(tiny_style_space_run, tmp_path):
    references = []
    for k, shape in enumerate([(40, 50, 3), (64, 48, 3)]):  # any size: centre-cropped and resized
        path = tmp_path / f"ref{k}.png"
        Image.fromarray(np.random.default_rng(k).integers(0, 255, shape, dtype=np.uint8)).save(path)
        references.append(str(path))
    written = explore.explore(
        str(tiny_style_space_run), str(tmp_path / "figures"), references, dims=[0, 3]
    )
    expected = {  # (width, height) in cells
        "style_x_content_random": (6, 6),
        "random_styles": (6, 4),
        "interpolation": (5, 5),
        "dimension_00": (6, 3),
        "dimension_03": (6, 3),
        "reconstruction": (8, 2),
        "style_transfer": (5, 5),
        "reference_reconstruction": (4, 1),
        "reference_style_transfer": (3, 5),
        "held_out_artist": (6, 4),
    }
    assert set(written) == set(expected)
    for name, (cols, rows) in expected.items():
        with Image.open(written[name]) as picture:
            assert picture.format == "PNG" and picture.size == (side(cols), side(rows)), name
            assert len(np.unique(np.asarray(picture).reshape(-1, 3), axis=0)) > 10, name
    index = json.loads((tmp_path / "figures" / "index.json").read_text())
    assert index["dims"] == [0, 3]
    trained_on = sum(a["count"] for a in records.read_artists(str(tiny_style_space_run)))
    assert index["ranked_images"] == trained_on  # every training image is ranked, as the paper does
    with pytest.raises(ValueError, match="cannot be read"):
        explore.load_reference_images([str(tmp_path / "missing.png")], SIZE)


def test_sweeps_default_to_the_papers_dimensions():
    assert explore.default_dims(32) == [9, 5]  # the paper's 10th and 6th
    assert explore.default_dims(8) == [5]
    assert explore.default_dims(4) == [0, 1, 2, 3]


def test_ranked_images_are_fetched_by_position(tiny_style_space_run):
    from tf_gadn.training import checkpoints

    config, _ = checkpoints.load_run_info(str(tiny_style_space_run))
    first = explore.training_images(config, 64)["image"]
    np.testing.assert_array_equal(explore.images_at(config, [60, 3, 40]), first[[60, 3, 40]])


def test_exploration_helpers():
    corners = np.array([[0, 0], [1, 0], [0, 1], [1, 1]], np.float32)
    grid = visualize.bilinear_styles(corners, 3)
    np.testing.assert_allclose(grid[1, 1], [0.5, 0.5])
    np.testing.assert_allclose(grid[2, 0], [0, 1])
    swept = visualize.sweep_dimension(np.ones((2, 4)), 2)
    np.testing.assert_array_equal(swept[:, :, 2], [[-5, 0, 5], [-5, 0, 5]])
    assert (swept[:, :, [0, 1, 3]] == 1).all()
    low, high = visualize.extreme_indices(np.arange(100)[::-1], 3, 0.1)
    assert all(v >= 90 for v in low) and all(v < 10 for v in high)  # scores are reversed indices


def test_style_space_evaluation_reports_four_probe_numbers(tiny_style_space_run, tmp_path):
    report = evaluate_style_space.evaluate(str(tiny_style_space_run), str(tmp_path))
    assert set(report["four_numbers"]) == {
        "style_code->style_factors",
        "style_code->content_factors",
        "content_code->style_factors",
        "content_code->content_factors",
    }
    assert all(v is None or -5 < v <= 1 for v in report["four_numbers"].values())
    held_out = report["held_out_artist"]
    assert all(np.isfinite(v) and v >= 0 for v in held_out.values())
    assert 0 <= held_out["held_out_artists_beating_input"] <= 1
    assert held_out["transfer_error_held_out_artists_mean_of_8"] > 0
    assert (tmp_path / "style_space_report.json").exists()
    transfer = report[
        "transfer"
    ]  # the shared transfer report, style taken from the target artist's drawings
    assert 0 < transfer["transfer_error"] < 3.5 and 0 <= transfer["style_attribution"] <= 1
    assert transfer["fd_transfer"] >= 0 and "fd_sample" in transfer


def test_held_out_transfer_averages_distinct_unseen_artists(tiny_style_space_run):
    """The mean over K unseen artists is the mean of K different artists' single scores (artist n, n + 1, ...)."""
    from tf_gadn.style_space.common import load_style_space

    space = load_style_space(str(tiny_style_space_run))
    info = records.read_dataset_info(space.config.data_dir)
    n = len(records.read_artists(space.config.data_dir))
    test = evaluate_style_space.encode_split(space, "train", max_images=6)
    images, contents = test["image"], test["content_factors"]

    def score(first, count):
        return evaluate_style_space.held_out_transfer(space, images, contents, info, first, count)

    pair, first, second = score(n, 2), score(n, 1), score(n + 1, 1)
    firsts = [first["transfer_error_held_out_artist"], second["transfer_error_held_out_artist"]]
    assert firsts[0] != firsts[1]  # two different artists
    assert pair["transfer_error_held_out_artist"] == firsts[0]
    np.testing.assert_allclose(pair["transfer_error_held_out_artists_mean_of_2"], np.mean(firsts))
    inputs = [
        first["baseline_input_unchanged_held_out"],
        second["baseline_input_unchanged_held_out"],
    ]
    np.testing.assert_allclose(pair["baseline_input_unchanged_held_out_mean_of_2"], np.mean(inputs))
    beats = np.mean(np.array(firsts) < np.array(inputs))
    assert pair["held_out_artists_beating_input"] == beats


def test_held_out_artist_is_drawn_in_the_data_sets_family():
    """A line-art data set's held-out artist draws line art: its transfers are scored against line art, not colour."""
    from tf_gadn.data import synthetic

    contents = [synthetic.sample_content(np.random.default_rng(0)) for _ in range(2)]
    line = explore.held_out_artist(1, 3, SIZE, contents, family="lineart")
    colour = explore.held_out_artist(1, 3, SIZE, contents)
    expected = explore.to_model_space(
        np.stack(
            [synthetic.render(c, synthetic.artist_style(1, 3), SIZE, "lineart") for c in contents]
        )
    )
    np.testing.assert_allclose(line["truth"], expected)
    assert not np.allclose(line["truth"], colour["truth"])
    assert line["images"].shape == colour["images"].shape
    assert not np.allclose(line["images"], colour["images"])
