"""What StarGAN's stage, evaluation and figures share: G(x, one-hot(a')) as a transfer, and the style x content grid."""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from tf_gadn.evaluation.transfer_eval import TransferModel

GRID_COLUMNS = 8


def translate(generator, images, target_artists, num_artists: int):
    """G(x, c) with c the one-hot label of each target artist."""
    label = tf.one_hot(tf.cast(target_artists, tf.int32), num_artists)
    return generator([tf.cast(images, tf.float32), label])


def style_by_content_grid(generator, images, num_artists: int):
    """[rows = `images`, cols = artists, S, S, 3]: every image translated to each of the first artists."""
    cols = min(num_artists, GRID_COLUMNS)
    rows = tf.shape(images)[0]
    fakes = translate(
        generator,
        tf.repeat(images, cols, axis=0),
        tf.tile(tf.range(cols), [rows]),
        num_artists,
    )
    return tf.reshape(fakes, tf.concat([[rows, cols], tf.shape(fakes)[1:]], axis=0))


def transfer_model(generator, num_artists: int) -> TransferModel:
    """StarGAN as the transfer report sees it: x -> G(x, c'). It has no content prior, so no samples."""

    def transfer(images, source_artists, target_artists):
        del source_artists  # G is told only the target domain (StarGAN Section 3)
        return np.asarray(translate(generator, images, target_artists, num_artists))

    return TransferModel(transfer)
