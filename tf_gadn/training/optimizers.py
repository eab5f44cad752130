"""Optimizer variants the stages can use instead of Keras's own (tf_gadn/training/stage.py: Stage.new_optimizer)."""

from __future__ import annotations

import keras
import tensorflow as tf


class FusedAdam(keras.optimizers.Adam):
    """Keras's Adam with each dense update as TensorFlow's one ResourceApplyAdam kernel instead of about twenty
    small ops per variable (an update of 90 variables alone ran 2.6x faster; the effect on a whole step was within
    a shared machine's noise, NOTES_speed.md). Same formula; results differ from Keras's in the last bit (the kernel rounds differently).
    Row gradients of a style table (IndexedSlices) keep Keras's update."""

    def update_step(self, gradient, variable, learning_rate):
        if isinstance(gradient, tf.IndexedSlices) or self.amsgrad:
            return super().update_step(gradient, variable, learning_rate)
        dtype = variable.dtype
        step = tf.cast(self.iterations + 1, dtype)
        index = self._get_variable_index(variable)

        def handle(v):
            return (v.value if isinstance(v, keras.Variable) else v).handle

        tf.raw_ops.ResourceApplyAdam(
            var=handle(variable),
            m=handle(self._momentums[index]),
            v=handle(self._velocities[index]),
            beta1_power=tf.pow(tf.cast(self.beta_1, dtype), step),
            beta2_power=tf.pow(tf.cast(self.beta_2, dtype), step),
            lr=tf.cast(learning_rate, dtype),
            beta1=tf.cast(self.beta_1, dtype),
            beta2=tf.cast(self.beta_2, dtype),
            epsilon=tf.cast(self.epsilon, dtype),
            grad=tf.cast(gradient, dtype),
        )
