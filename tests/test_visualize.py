"""Pictures: grids tile cells where they belong; line plots draw every curve and reject what they cannot plot."""

import numpy as np
import pytest
from PIL import Image

from tf_gadn.evaluation import visualize


def test_tile_places_each_cell_with_gaps():
    grid = np.zeros((2, 3, 4, 5, 3), np.uint8)
    grid[1, 2] = 7
    out = visualize.tile(grid, gap=1)
    assert out.shape == (2 * 4 + 1, 3 * 5 + 2, 3)
    assert (out[5:9, 12:17] == 7).all() and (out[0:4, 0:5] == 0).all() and (out[4, :] == 255).all()


def test_line_plot_draws_each_curve_in_its_colour(tmp_path):
    path = tmp_path / "plot.png"
    visualize.line_plot_png(
        {"a": ([1, 2, 4], [0.1, 0.5, 0.9]), "b": ([1, 2, 4], [0.9, 0.4, 0.2])},
        str(path),
        "d",
        "accuracy",
        log_x=True,
    )
    pixels = np.asarray(Image.open(path).convert("RGB")).reshape(-1, 3)
    for colour in visualize._PALETTE[:2]:
        assert (pixels == colour).all(axis=1).sum() > 100


def test_line_plot_rejects_log_of_nonpositive(tmp_path):
    with pytest.raises(ValueError):
        visualize.line_plot_png(
            {"a": ([0, 1], [1, 2])}, str(tmp_path / "p.png"), "x", "y", log_x=True
        )
