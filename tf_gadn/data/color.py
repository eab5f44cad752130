"""sRGB <-> CIE Lab (D65) in TensorFlow ops, with the normalisation the style-space networks see (that paper,
Section 5.2: "all networks operate in the Lab color space").

Model space is always roughly [-1, 1]: RGB as 2*rgb - 1; Lab as (L/50 - 1, a/110, b/110). 110 bounds |a|, |b| of
every sRGB colour (a in [-86.2, 98.2], b in [-107.9, 94.5], extremes at green/magenta and blue/yellow), so no sRGB
image leaves [-1, 1]; the networks' outputs may, and lab_to_rgb clips them back into the sRGB gamut.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

COLORS = ("rgb", "lab")
_AB_SCALE = 110.0
_WHITE_D65 = (0.95047, 1.0, 1.08883)
_RGB_TO_XYZ = [
    [0.4124564, 0.3575761, 0.1804375],
    [0.2126729, 0.7151522, 0.0721750],
    [0.0193339, 0.1191920, 0.9503041],
]
_EPSILON = 216.0 / 24389.0
_KAPPA = 24389.0 / 27.0
# Every linear step is one 3x3 matrix on the channel axis (tensordot keeps any leading dims); per-channel
# unstack/stack is ~3x slower on CPU, where the input pipeline converts every training image.
_LINEAR_TO_XYZN = np.array(_RGB_TO_XYZ, np.float64).T / np.array(
    _WHITE_D65
)  # white-normalised XYZ = rgb @ this
_F_TO_LAB = np.array(
    [[0.0, 500.0, 0.0], [116.0, -500.0, 200.0], [0.0, 0.0, -200.0]]
)  # (L+16, a, b) = f @ this
_LAB_TO_F = np.linalg.inv(_F_TO_LAB)
_XYZN_TO_LINEAR = np.linalg.inv(_LINEAR_TO_XYZN)
_LAB_OFFSET = np.array([16.0, 0.0, 0.0], np.float32)
_NORM_SCALE = np.array([1.0 / 50.0, 1.0 / _AB_SCALE, 1.0 / _AB_SCALE], np.float32)
_NORM_OFFSET = np.array([-1.0, 0.0, 0.0], np.float32)


def _as_float32(x):
    return tf.cast(tf.convert_to_tensor(x), tf.float32)


def _mix(x, matrix):
    return tf.tensordot(x, tf.constant(matrix, tf.float32), 1)


def _pow(x, exponent):
    """x ** exponent for x > 0 as exp(exponent * log x): ~5x faster than tf.pow on CPU."""
    return tf.exp(exponent * tf.math.log(x))


def _srgb_to_linear(c):
    return tf.where(c <= 0.04045, c / 12.92, _pow((tf.maximum(c, 0.04045) + 0.055) / 1.055, 2.4))


def _linear_to_srgb(c):
    c = tf.clip_by_value(c, 0.0, 1.0)
    return tf.where(
        c <= 0.0031308, c * 12.92, 1.055 * _pow(tf.maximum(c, 0.0031308), 1.0 / 2.4) - 0.055
    )


def rgb_to_lab(rgb):
    """rgb in [0, 1], any leading dims -> float32 Lab with L in [0, 100]."""
    xyz = _mix(_srgb_to_linear(_as_float32(rgb)), _LINEAR_TO_XYZN)
    f = tf.where(
        xyz > _EPSILON, _pow(tf.maximum(xyz, _EPSILON), 1.0 / 3.0), (_KAPPA * xyz + 16.0) / 116.0
    )
    return _mix(f, _F_TO_LAB) - _LAB_OFFSET


def lab_to_rgb(lab):
    """Inverse of rgb_to_lab; colours outside the sRGB gamut are clipped to [0, 1]."""
    f = _mix(_as_float32(lab) + _LAB_OFFSET, _LAB_TO_F)
    cube = f * f * f
    xyz = tf.where(cube > _EPSILON, cube, (116.0 * f - 16.0) / _KAPPA)
    return _linear_to_srgb(_mix(xyz, _XYZN_TO_LINEAR))


def normalize_lab(lab):
    """Lab -> model space (L/50 - 1, a/110, b/110), roughly [-1, 1]."""
    return _as_float32(lab) * _NORM_SCALE + _NORM_OFFSET


def denormalize_lab(lab_m11):
    """Inverse of normalize_lab."""
    return (_as_float32(lab_m11) - _NORM_OFFSET) / _NORM_SCALE


def to_model_space(rgb_m11, color: str):
    """RGB in [-1, 1] -> what the networks of `color` see."""
    _check(color)
    rgb_m11 = _as_float32(rgb_m11)
    return rgb_m11 if color == "rgb" else normalize_lab(rgb_to_lab((rgb_m11 + 1.0) / 2.0))


def to_rgb_m11(image, color: str):
    """Model-space image of `color` -> RGB in [-1, 1]."""
    _check(color)
    image = _as_float32(image)
    return image if color == "rgb" else lab_to_rgb(denormalize_lab(image)) * 2.0 - 1.0


def _check(color: str) -> None:
    if color not in COLORS:
        raise ValueError(f"color must be one of {COLORS}, got {color!r}")
