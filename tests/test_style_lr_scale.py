"""--style_lr_scale=presence: GADN's style table learns as fast with 100 artists per collection as with 8."""

import keras
import numpy as np
import pytest
import tensorflow as tf
from test_gadn_stages import TINY

from tf_gadn.gadn.common import style_lr_factor
from tf_gadn.training.registry import stage_class


def test_factor_is_one_over_the_root_of_a_rows_expected_copies():
    assert style_lr_factor("none", [40] * 100, 16) == 1.0
    # 8 equal artists, batch 16: 2 images of each artist per batch on average.
    assert style_lr_factor("presence", [120] * 8, 16) == pytest.approx(2**-0.5)
    assert style_lr_factor("presence", [40] * 100, 16) == pytest.approx(2.5)
    # The median artist decides; an artist without images does not count.
    assert style_lr_factor("presence", [10, 10, 10, 1000, 0], 16) == style_lr_factor(
        "presence", [10, 10, 10, 1000], 16
    )


def test_unknown_scale_and_empty_collections_are_refused():
    with pytest.raises(ValueError, match="style_lr_scale"):
        style_lr_factor("sqrt", [10, 10], 8)
    with pytest.raises(ValueError, match="artists with images"):
        style_lr_factor("presence", [0, 0], 8)


def _row_travel(num_artists: int, learning_rate: float, optimizer, steps: int = 400) -> float:
    """Mean distance the rows of a table move when each step's batch of 16 artists (drawn uniformly) pulls its rows
    along one fixed direction: the style table's situation with a consistent gradient."""
    rng = np.random.default_rng(0)
    table = tf.Variable(tf.zeros([num_artists, 4]))
    update = optimizer(learning_rate)
    for _ in range(steps):
        rows = tf.constant(rng.integers(0, num_artists, 16), tf.int32)
        with tf.GradientTape() as tape:
            loss = -tf.reduce_sum(tf.gather(table, rows))
        update.apply_gradients([(tape.gradient(loss, table), table)])
    return float(tf.reduce_mean(tf.norm(table, axis=-1)))


@pytest.mark.parametrize(
    "optimizer,tolerance",
    [(keras.optimizers.Adam, 0.10), (keras.optimizers.RMSprop, 0.20)],  # stage 1's, stage 2's
)
def test_scaled_rate_moves_every_row_about_the_rate_per_step(optimizer, tolerance):
    """The factor's reasoning, checked on Keras's optimizers themselves: unscaled, a row of a 100-artist table moves
    less than a third as far as one of an 8-artist table; scaled, rows of one, 8 and 100 artists all move about lr per
    step and coordinate (Adam within 10%; RMSprop, which has no momentum, within 20%: 0.83 lr at 100 artists), as a
    weight with a steady gradient every step does."""
    lr, steps = 1e-3, 400
    per_step = lr * steps * 2  # 4 coordinates, each moving lr: a norm of 2 lr per step
    unscaled = {n: _row_travel(n, lr, optimizer, steps) for n in (8, 100)}
    assert unscaled[100] < unscaled[8] / 3
    for n in (1, 8, 100):
        factor = style_lr_factor("presence", [1] * n, 16)
        scaled = _row_travel(n, lr * factor, optimizer, steps)
        assert scaled == pytest.approx(per_step, rel=tolerance), n


@pytest.mark.parametrize(
    "name,base", [("gadn_stage1", "stage1_style_lr"), ("gadn_stage2", "stage2_style_lr")]
)
def test_both_stages_train_the_table_at_the_scaled_rate(name, base):
    counts = [40] * 100
    for scale in ("none", "presence"):
        config = TINY.replace(style_lr_scale=scale)
        stage = stage_class(name)(config, counts, 16)
        stage.compile()
        rate = float(keras.ops.convert_to_numpy(stage.optimizers["style_table"].learning_rate))
        expected = getattr(config, base) * style_lr_factor(scale, counts, 16)
        assert rate == pytest.approx(expected, rel=1e-6)
