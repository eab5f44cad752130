"""Shared training layer: config (flags -> one frozen object), the Stage base class and the stage registry, the one
training loop, checkpoints, tf.distribute strategies, collapse warnings."""
