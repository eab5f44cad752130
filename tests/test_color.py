"""Lab colour (style-space paper, Section 5.2): exact inverse, known reference values, normalised range."""

import numpy as np
import pytest
import tensorflow as tf

from tf_gadn.data import color


def rgb_grid(steps=17):
    axis = np.linspace(0.0, 1.0, steps, dtype=np.float32)
    return np.stack(np.meshgrid(axis, axis, axis, indexing="ij"), axis=-1).reshape(-1, 3)


def dense_rgb():
    """A 33^3 cube (black, white, primaries, secondaries at its corners) plus every 8-bit level along the grey axis
    and the six primary/secondary axes, where the sRGB curve's linear toe (c <= 0.04045) lives."""
    levels = np.arange(256, dtype=np.float32) / 255.0
    ramps = [
        levels[:, None] * np.array(direction, np.float32)
        for direction in (
            [1, 1, 1],
            [1, 0, 0],
            [0, 1, 0],
            [0, 0, 1],
            [1, 1, 0],
            [0, 1, 1],
            [1, 0, 1],
        )
    ]
    return np.concatenate([rgb_grid(33)] + ramps)


def test_lab_round_trip_within_1e_3():
    rgb = dense_rgb()
    lab = color.rgb_to_lab(rgb)
    assert lab.dtype == tf.float32 and lab.shape == rgb.shape
    back = color.lab_to_rgb(lab).numpy()
    assert np.abs(back - rgb).max() < 1e-3
    lab = lab.numpy()  # the ranges the normalisation constants rely on
    assert (
        lab[:, 0].min() >= -1e-3
        and lab[:, 0].max() <= 100.0 + 1e-3
        and np.abs(lab[:, 1:]).max() < 110.0
    )


def test_normalisation_constants():
    lab = np.array(
        [[100.0, 0.0, 0.0], [0.0, 0.0, 0.0], [50.0, 110.0, -55.0]], np.float64
    )  # float64 in: float32 out
    normalized = color.normalize_lab(lab)
    assert normalized.dtype == tf.float32
    np.testing.assert_allclose(normalized.numpy(), [[1, 0, 0], [-1, 0, 0], [0, 1, -0.5]], atol=1e-6)
    np.testing.assert_allclose(color.denormalize_lab(normalized).numpy(), lab, atol=1e-4)


def test_reference_values():
    lab = color.rgb_to_lab(np.array([[1, 1, 1], [0, 0, 0], [1, 0, 0]], np.float32)).numpy()
    np.testing.assert_allclose(lab[0], [100, 0, 0], atol=0.01)
    np.testing.assert_allclose(lab[1], [0, 0, 0], atol=0.01)
    np.testing.assert_allclose(lab[2], [53.24, 80.09, 67.20], atol=0.05)  # sRGB red, D65


def test_model_space_is_within_unit_range_and_inverts_with_batch_dims():
    rgb_m11 = rgb_grid(9).reshape(9, 9, 9, 3) * 2 - 1
    lab = color.to_model_space(rgb_m11, "lab").numpy()
    assert lab.shape == rgb_m11.shape and np.abs(lab).max() <= 1.0
    np.testing.assert_allclose(color.to_rgb_m11(lab, "lab").numpy(), rgb_m11, atol=2e-3)
    np.testing.assert_array_equal(color.to_model_space(rgb_m11, "rgb").numpy(), rgb_m11)


def test_works_inside_tf_function_and_rejects_unknown_colour():
    f = tf.function(lambda x: color.to_rgb_m11(color.to_model_space(x, "lab"), "lab"))
    x = tf.constant(rgb_grid(5) * 2 - 1)
    np.testing.assert_allclose(f(x).numpy(), x.numpy(), atol=2e-3)
    with pytest.raises(ValueError, match="color must be"):
        color.to_model_space(x, "hsv")
