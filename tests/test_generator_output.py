"""The generators' output function (--generator_output): tanh saturates on white paper, the straight-through clip
does not, and no loss can push the clip's pre-activations further out of range."""

import numpy as np
import tensorflow as tf

from tf_gadn.nn.blocks import straight_through_clip


def test_clip_passes_inward_gradients_and_blocks_outward_ones():
    h = tf.Variable([-2.0, -0.5, 0.5, 2.0, 2.0, -2.0])
    with tf.GradientTape() as tape:
        y = straight_through_clip(h)
        loss = tf.reduce_sum(y * tf.constant([1.0, 1.0, 1.0, 1.0, -1.0, -1.0]))
    np.testing.assert_array_equal(y.numpy(), [-1.0, -0.5, 0.5, 1.0, 1.0, -1.0])
    # h=-2 with gradient +1 would move further down: blocked; h=2 with gradient +1 moves back in: passed; etc.
    np.testing.assert_array_equal(tape.gradient(loss, h).numpy(), [0.0, 1.0, 1.0, 1.0, 0.0, -1.0])


STROKES = tf.constant([-1.0] * 4 + [1.0] * 12)  # four black pixels on white paper


def _fit(output_fn, start: float, phases, learning_rate=0.5):
    """L1 descent on 16 pixels from pre-activation `start`, through (target, steps) phases; returns the output."""
    h = tf.Variable(tf.fill([16], start))
    for target, steps in phases:
        for _ in range(steps):
            with tf.GradientTape() as tape:
                loss = tf.reduce_mean(tf.abs(output_fn(h) - target))
            h.assign_sub(learning_rate * 16 * tape.gradient(loss, h))
    return output_fn(h).numpy()


def test_a_saturated_white_page_learns_its_strokes_only_through_the_clip():
    # Pixels start saturated white (pre-activation 3) and must learn to draw the strokes.
    with_tanh, with_clip = (
        _fit(fn, 3.0, [(STROKES, 50)]) for fn in (tf.tanh, straight_through_clip)
    )
    assert np.all(with_tanh[:4] > 0.9)  # tanh'(3) ~ 0.01: the strokes never start
    np.testing.assert_allclose(with_clip[:4], -1.0)  # the clip draws them
    np.testing.assert_allclose(with_clip[4:], 1.0)  # and the paper stays white


def test_after_a_white_page_tanh_cannot_draw_but_both_clips_can():
    from tf_gadn.nn.blocks import SOFT_CLIP_SCALE

    soft_clip = lambda h: straight_through_clip(SOFT_CLIP_SCALE * tf.tanh(h))  # noqa: E731
    phases = [
        (tf.ones([16]), 200),
        (STROKES, 30),
    ]  # 200 steps of a white page, then 30 to draw strokes on it
    assert np.all(
        _fit(tf.tanh, 0.0, phases)[:4] > 0.5
    )  # white pixels were pushed deep into saturation
    for output_fn in (
        straight_through_clip,
        soft_clip,
    ):  # they stop where the target is met: strokes follow
        np.testing.assert_allclose(_fit(output_fn, 0.0, phases)[:4], -1.0, atol=0.05)
