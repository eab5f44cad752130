"""`python -m tf_gadn.compare`: every method and baseline is scored by the one transfer report on the same pairs,
and the table, CSV and Figure 4 are written."""

import csv

import numpy as np
import pytest
from conftest import synthetic_set

from tf_gadn import compare
from tf_gadn.evaluation import comparison, feature_net


@pytest.fixture(scope="module")
def compared(tiny_gadn_run, tiny_stargan_run, tiny_dataset, tmp_path_factory):
    out_dir = tmp_path_factory.mktemp("compare")
    with pytest.MonkeyPatch.context() as patch:
        # the measuring and the neural-style networks, trained briefly: the plumbing is under test, not their skill
        patch.setattr(feature_net, "STEPS", 40)
        return compare.run(
            [str(tiny_gadn_run), str(tiny_stargan_run)],
            str(tiny_dataset),
            str(out_dir),
            iterations=3,
        )


def test_every_method_and_baseline_has_every_metric_on_the_same_pairs(compared):
    reports = compared["reports"]
    assert list(reports)[:2] == ["gadn (gadn)", "stargan (stargan)"]
    assert {
        "baseline: input unchanged",
        "baseline: artist mean image",
        "baseline: nearest training image",
        "neural style (one drawing)",
        "neural style (artist-average Gram)",
        "neural style (one drawing, colours kept)",
    } <= set(reports)
    for name, numbers in reports.items():
        missing = [k for k in comparison.TABLE_KEYS if k != "fd_sample" and k not in numbers]
        assert not missing, (name, missing)
    assert len({numbers["test_images"] for numbers in reports.values()}) == 1
    assert "fd_sample" in reports["gadn (gadn)"]  # GADN samples contents; StarGAN cannot
    assert "fd_sample" not in reports["stargan (stargan)"]


def test_baseline_rows_reproduce_the_reports_baseline_numbers(compared):
    # one code path: the input-unchanged row scores exactly the pairs each method's baseline column scores
    reports = compared["reports"]
    for name in ("input unchanged", "artist mean image", "nearest training image"):
        row = reports[f"baseline: {name}"]["transfer_error"]
        column = reports["stargan (stargan)"][f"baseline_{name.replace(' ', '_')}"]
        np.testing.assert_allclose(row, column, rtol=1e-6)


def test_colours_kept_changes_the_neural_style_output(compared):
    reports = compared["reports"]
    plain = reports["neural style (one drawing)"]["transfer_error"]
    kept = reports["neural style (one drawing, colours kept)"]["transfer_error"]
    assert plain != kept


def test_table_csv_and_figure_are_written(compared):
    paths = compared["paths"]
    with open(paths["csv"], encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    assert [r["method"] for r in rows] == list(compared["reports"])
    assert any(k.startswith("factor_errors/") for k in rows[0])  # per-factor probes travel too
    text = open(paths["markdown"], encoding="utf-8").read()
    assert all(k in text for k in comparison.TABLE_KEYS) and "neural style" in text
    from PIL import Image

    width, height = Image.open(paths["figure"]).size
    rows_in_figure = 1 + 4 * len(
        compared["reports"]
    )  # header + one row per method for each of 4 artists
    assert height > width and height >= rows_in_figure * 32


def test_a_label_conditioned_run_refuses_another_collections_artists(tiny_stargan_run, tmp_path):
    other = synthetic_set(tmp_path / "other", num_artists=3, images_per_artist=8, seed=2)
    with pytest.raises(ValueError, match="artist labels"):
        compare.run_models([str(tiny_stargan_run)], str(other))
