"""--ema_decay: an exponential moving average of a stage's network weights (Polyak averaging), the networks a stage
hands on.

Neither paper averages weights. Measured on three finished demo runs (BUILD.md "Quality"): the held-out transfer error
of GADN's stage 1 moves up and down by 0.01-0.05 between checkpoints 500 steps apart, and the plain mean of the last
three checkpoints beat each of them on all three runs. An average follows the trend of the weights without the
step-to-step swing of adversarial training.

The average is kept next to the weights being trained (float32 copies, checkpointed with them, so a resumed run
continues it exactly) and is what the stage's periodic evaluation, sample grids, after-training hook, later stages,
evaluation and export see. Training itself always continues from the raw weights.
"""

from __future__ import annotations

import contextlib

import tensorflow as tf

# TensorFlow's ExponentialMovingAverage(num_updates=...) ramp: the decay after t updates is min(decay, (1+t)/(10+t)),
# so the first steps' (random-initialisation) weights leave the average quickly. Until (1+t)/(10+t) reaches the decay
# (t = 4490 for 0.998) the average's mean age is about t/9 steps: the last ~11% of the run so far.
_RAMP = 10.0


def floating(variables) -> list:
    """The floating-point variables among `variables`, in order (counters and seeds are integers)."""
    return [v for v in variables if tf.as_dtype(v.dtype).is_floating]


def float_weights(network) -> list:
    """The weights an average covers (and the order of a checkpoint's `averaged/<name>/wNNNN`)."""
    return floating(network.weights)


def effective_decay(decay: float, step: tf.Tensor) -> tf.Tensor:
    step = tf.cast(step, tf.float32)
    return tf.minimum(tf.constant(decay, tf.float32), (1.0 + step) / (_RAMP + step))


class WeightAverage:
    """One float32 shadow variable per floating-point weight of the averaged networks.

    Args:
        networks: name -> network (or variable holder) whose weights are averaged.
        decay: the average's decay per step (0 < decay < 1); the mean age of its weights is about 1/(1-decay) steps.
    """

    def __init__(self, networks: dict, decay: float):
        if not 0.0 < decay < 1.0:
            raise ValueError(f"ema_decay={decay} must be in (0, 1) (0 turns averaging off)")
        self.decay = float(decay)
        self.weights: dict[str, list[tf.Variable]] = {}
        self.shadows: dict[str, list[tf.Variable]] = {}
        for name, network in networks.items():
            weights = float_weights(network)
            self.weights[name] = weights
            self.shadows[name] = [
                tf.Variable(
                    tf.cast(w, tf.float32),
                    trainable=False,
                    name=f"average_{name}_{i}",
                    synchronization=tf.VariableSynchronization.ON_WRITE,
                    aggregation=tf.VariableAggregation.ONLY_FIRST_REPLICA,
                )
                for i, w in enumerate(weights)
            ]

    def _pairs(self):
        for name, weights in self.weights.items():
            yield from zip(weights, self.shadows[name])

    def update(self, step: tf.Tensor) -> None:
        """average <- d * average + (1 - d) * weights after the update of `step` (cross-replica context)."""
        d = effective_decay(self.decay, step)
        for weight, shadow in self._pairs():
            shadow.assign_sub((1.0 - d) * (shadow - tf.cast(weight, tf.float32)))

    def reset(self) -> None:
        """The average starts at the current weights (a fresh stage after it inherited its networks)."""
        for weight, shadow in self._pairs():
            shadow.assign(tf.cast(weight, tf.float32))

    def copy_into_weights(self) -> None:
        for weight, shadow in self._pairs():
            weight.assign(tf.cast(shadow, weight.dtype))

    @contextlib.contextmanager
    def in_networks(self):
        """The averaged weights in the networks for the duration of the block; the trained weights back after it."""
        saved = [tf.identity(weight) for weight, _ in self._pairs()]
        self.copy_into_weights()
        try:
            yield
        finally:
            for (weight, _), value in zip(self._pairs(), saved):
                weight.assign(value)
