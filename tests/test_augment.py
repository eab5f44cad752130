"""The critics' zoom-and-shift (--critic_augment): identity at its centre, a known shift, gradients reach the input."""

import numpy as np
import tensorflow as tf

from tf_gadn.nn import augment


def test_centre_is_identity_and_a_shift_moves_pixels():
    images = tf.random.stateless_uniform([2, 32, 32, 3], seed=(1, 2))
    same = augment.zoom_and_shift(images, tf.constant([[0.0, 0.5, 0.5]] * 2))
    np.testing.assert_allclose(same.numpy(), images.numpy(), atol=1e-5)
    # u = 0.5 + 0.3125 on x with max_shift 0.1 moves the box 0.0625 of the pixel span (31 px) ~ 1.94 px right:
    # use a shift of exactly 31/16 px by choosing u so that (2u - 1) * 0.1 * 31 = 2 px.
    u_x = 0.5 + 2.0 / (2 * 0.1 * 31)
    shifted = augment.zoom_and_shift(images, tf.constant([[0.0, 0.5, u_x]] * 2))
    np.testing.assert_allclose(shifted.numpy()[:, :, :-2], images.numpy()[:, :, 2:], atol=1e-5)


def test_gradients_reach_the_generated_image():
    images = tf.Variable(tf.random.stateless_uniform([3, 16, 16, 3], seed=(3, 4)))
    uniform = tf.random.stateless_uniform([3, augment.UNIFORMS], seed=(5, 6))
    with tf.GradientTape() as tape:
        out = tf.reduce_sum(augment.zoom_and_shift(images, uniform))
    grad = tape.gradient(out, images)
    assert grad is not None and float(tf.reduce_sum(tf.abs(grad))) > 0


def test_critic_views_off_is_identity_on_uses_each_images_own_numbers():
    rng = np.random.default_rng(0)
    real = tf.constant(rng.uniform(-1, 1, (2, 16, 16, 3)), tf.float32)
    fake = tf.constant(rng.uniform(-1, 1, (2, 16, 16, 3)), tf.float32)
    uniform = tf.constant(rng.uniform(0, 1, (2, 2 * augment.UNIFORMS)), tf.float32)
    same_real, same_fake = augment.critic_views(real, fake, None, enabled=False)
    assert same_real is real and same_fake is fake
    seen_real, seen_fake = augment.critic_views(real, fake, uniform, enabled=True)
    np.testing.assert_allclose(
        seen_real, augment.zoom_and_shift(real, uniform[:, : augment.UNIFORMS]), atol=1e-6
    )
    np.testing.assert_allclose(
        seen_fake, augment.zoom_and_shift(fake, uniform[:, augment.UNIFORMS :]), atol=1e-6
    )
    assert np.abs(seen_real.numpy() - real.numpy()).mean() > 0.01
