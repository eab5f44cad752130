"""Pieces the three GADN stages share: drawing codes from E and S with pipeline noise, and the style x content grid."""
from __future__ import annotations

import tensorflow as tf

from tf_gadn.nn.gadn import reparameterize

GRID_COLUMNS = 8


def sample_code(network, inputs, eps):
    """(z, mean, std) for E(x) or S(a): the paper's implicit sampling when a code is fed to another network."""
    mean, std = network(inputs)
    return reparameterize(mean, std, eps), mean, std


def style_by_content_grid(encoder, generator, style_table, images, num_artists: int):
    """[rows = contents of `images`, cols = artists, S, S, 3], from mean content and mean style codes."""
    content, _ = encoder(images)
    artists = tf.range(min(num_artists, GRID_COLUMNS))
    style, _ = style_table(artists)
    rows, cols = tf.shape(content)[0], tf.shape(style)[0]
    content = tf.repeat(content, cols, axis=0)
    style = tf.tile(style, [rows, 1])
    fakes = generator([content, style])
    return tf.reshape(fakes, tf.concat([[rows, cols], tf.shape(fakes)[1:]], axis=0))
