"""sRGB <-> CIE Lab (D65) in TensorFlow ops, with the normalisation the style-space networks see (that paper,
Section 5.2: "all networks operate in the Lab color space").

Model space is always roughly [-1, 1]: RGB as 2*rgb - 1; Lab as (L/50 - 1, a/110, b/110). 110 bounds |a|, |b| of
every sRGB colour (max |a| ~ 98.2 for pure magenta-green, max |b| ~ 107.9 for pure yellow-blue), so no value leaves [-1, 1].
"""
from __future__ import annotations

import numpy as np
import tensorflow as tf

COLORS = ("rgb", "lab")
_AB_SCALE = 110.0
_WHITE_D65 = (0.95047, 1.0, 1.08883)
_RGB_TO_XYZ = [[0.4124564, 0.3575761, 0.1804375],
               [0.2126729, 0.7151522, 0.0721750],
               [0.0193339, 0.1191920, 0.9503041]]
_XYZ_TO_RGB = np.linalg.inv(np.array(_RGB_TO_XYZ, np.float64)).astype(np.float32)
_EPSILON = 216.0 / 24389.0
_KAPPA = 24389.0 / 27.0


def _srgb_to_linear(c):
    return tf.where(c <= 0.04045, c / 12.92, tf.pow((tf.maximum(c, 0.04045) + 0.055) / 1.055, 2.4))


def _linear_to_srgb(c):
    c = tf.clip_by_value(c, 0.0, 1.0)
    return tf.where(c <= 0.0031308, c * 12.92, 1.055 * tf.pow(tf.maximum(c, 0.0031308), 1.0 / 2.4) - 0.055)


def rgb_to_lab(rgb):
    """rgb in [0, 1], any leading dims -> Lab with L in [0, 100]."""
    rgb = tf.convert_to_tensor(rgb, tf.float32)
    xyz = tf.einsum("...c,kc->...k", _srgb_to_linear(rgb), tf.constant(_RGB_TO_XYZ)) / tf.constant(_WHITE_D65)
    f = tf.where(xyz > _EPSILON, tf.pow(tf.maximum(xyz, _EPSILON), 1.0 / 3.0), (_KAPPA * xyz + 16.0) / 116.0)
    fx, fy, fz = tf.unstack(f, axis=-1)
    return tf.stack([116.0 * fy - 16.0, 500.0 * (fx - fy), 200.0 * (fy - fz)], axis=-1)


def lab_to_rgb(lab):
    """Inverse of rgb_to_lab; colours outside the sRGB gamut are clipped to [0, 1]."""
    lab = tf.convert_to_tensor(lab, tf.float32)
    l, a, b = tf.unstack(lab, axis=-1)
    fy = (l + 16.0) / 116.0
    f = tf.stack([fy + a / 500.0, fy, fy - b / 200.0], axis=-1)
    xyz = tf.where(f ** 3 > _EPSILON, f ** 3, (116.0 * f - 16.0) / _KAPPA) * tf.constant(_WHITE_D65)
    linear = tf.einsum("...k,ck->...c", xyz, tf.constant(_XYZ_TO_RGB))
    return _linear_to_srgb(linear)


def normalize_lab(lab):
    l, a, b = tf.unstack(tf.convert_to_tensor(lab, tf.float32), axis=-1)
    return tf.stack([l / 50.0 - 1.0, a / _AB_SCALE, b / _AB_SCALE], axis=-1)


def denormalize_lab(lab_m11):
    l, a, b = tf.unstack(tf.convert_to_tensor(lab_m11, tf.float32), axis=-1)
    return tf.stack([(l + 1.0) * 50.0, a * _AB_SCALE, b * _AB_SCALE], axis=-1)


def to_model_space(rgb_m11, color: str):
    """RGB in [-1, 1] -> what the networks of `color` see."""
    _check(color)
    rgb_m11 = tf.convert_to_tensor(rgb_m11, tf.float32)
    return rgb_m11 if color == "rgb" else normalize_lab(rgb_to_lab((rgb_m11 + 1.0) / 2.0))


def to_rgb_m11(image, color: str):
    """Model-space image of `color` -> RGB in [-1, 1]."""
    _check(color)
    image = tf.convert_to_tensor(image, tf.float32)
    return image if color == "rgb" else lab_to_rgb(denormalize_lab(image)) * 2.0 - 1.0


def _check(color: str) -> None:
    if color not in COLORS:
        raise ValueError(f"color must be one of {COLORS}, got {color!r}")
