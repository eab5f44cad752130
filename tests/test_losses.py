"""Each loss equals its paper equation computed by hand, and stays finite where a naive form would not."""

import numpy as np
import tensorflow as tf

from tf_gadn import losses


def test_pixel_distance_is_mean_of_per_pixel_l2_not_squared():
    x = np.zeros([1, 2, 2, 3], np.float32)
    y = x.copy()
    y[0, 0, 0] = [3, 4, 0]  # distance 5 at one pixel of four
    assert abs(float(losses.pixel_distance(x, y)[0]) - 1.25) < 1e-3


def test_nll_and_nlu_match_their_definitions():
    logits = np.array([[2.0, 0.5, -1.0], [0.0, 0.0, 0.0]], np.float32)
    labels = np.array([0, 2])
    p = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    y = p[np.arange(2), labels]
    np.testing.assert_allclose(losses.nll(logits, labels).numpy(), -np.log(y), rtol=1e-5)
    np.testing.assert_allclose(losses.nlu(logits, labels).numpy(), -np.log(1 - y), rtol=1e-5)


def test_nlu_is_finite_with_extreme_logits():
    logits = tf.constant([[80.0, -80.0, -80.0]])
    with tf.GradientTape() as tape:
        tape.watch(logits)
        value = losses.nlu(logits, tf.constant([0]))
    assert (
        np.isfinite(value.numpy()).all() and float(value[0]) > 150
    )  # -log(1 - ~1) is huge but finite
    assert np.isfinite(tape.gradient(value, logits).numpy()).all()


def test_kl_to_standard_normal():
    mean = np.array([[1.0, 0.0]], np.float32)
    std = np.array([[1.0, 2.0]], np.float32)
    expected = 0.5 * ((1 + 1 - 1 - 0) + (0 + 4 - 1 - np.log(4)))
    np.testing.assert_allclose(
        losses.kl_to_standard_normal(mean, std).numpy(), [expected], rtol=1e-6
    )
    assert float(losses.kl_to_standard_normal(np.zeros([1, 3]), np.ones([1, 3]))[0]) == 0.0


def test_lsgan_terms_use_a_minus_one_b_one_c_zero():
    d = tf.constant([-1.0, 0.0, 1.0])
    np.testing.assert_allclose(losses.lsgan_real(d).numpy(), [4, 1, 0])
    np.testing.assert_allclose(losses.lsgan_fake(d).numpy(), [0, 1, 4])
    np.testing.assert_allclose(losses.lsgan_generator(d).numpy(), [1, 0, 1])


def test_content_loss_is_squared_l2():
    np.testing.assert_allclose(
        losses.content_loss(np.array([[1.0, 2.0]]), np.array([[0.0, 0.0]])).numpy(), [5.0]
    )
    assert abs(losses.chance_level(4) - np.log(4)) < 1e-6
