"""Optimizer variants the stages can use instead of Keras's own (tf_gadn/training/stage.py: Stage.new_optimizer)."""

from __future__ import annotations

import keras
import tensorflow as tf


class FusedAdam(keras.optimizers.Adam):
    """Keras's Adam with each dense update as TensorFlow's one ResourceApplyAdam kernel instead of about twenty
    small ops per variable, and the update's scalars (beta powers, learning rate) computed once per `apply` instead
    of once per variable (a demo stage-1 step: 6019 graph ops with Keras's Adam, 2972 fused; the optimizer was 15% of
    a paper-size bf16 step, 8% fused: docs/notes/issue15_speed2.md). Same formula; results differ from
    Keras's in the last bit (the kernel rounds differently). Row gradients of a style table (IndexedSlices) keep
    Keras's update."""

    _scalars: dict | None = None

    def _distributed_tf_update_step(self, distribution, grads_and_vars, learning_rate):
        # One set of scalars per device (under MirroredStrategy each replica's variables live on their own device);
        # the merge call runs once, in one thread, so the cache is not shared between replicas' threads.
        self._scalars = {}
        try:
            return super()._distributed_tf_update_step(distribution, grads_and_vars, learning_rate)
        finally:
            self._scalars = None

    def _shared_scalars(self, variable, learning_rate) -> dict:
        key = (variable.device, variable.dtype)
        scalars = None if self._scalars is None else self._scalars.get(key)
        if scalars is None:
            dtype = variable.dtype
            step = tf.cast(self.iterations + 1, dtype)
            beta1, beta2 = tf.cast(self.beta_1, dtype), tf.cast(self.beta_2, dtype)
            scalars = dict(
                beta1_power=tf.pow(beta1, step),
                beta2_power=tf.pow(beta2, step),
                lr=tf.cast(learning_rate, dtype),
                beta1=beta1,
                beta2=beta2,
                epsilon=tf.cast(self.epsilon, dtype),
            )
            if self._scalars is not None:
                self._scalars[key] = scalars
        return scalars

    def update_step(self, gradient, variable, learning_rate):
        if isinstance(gradient, tf.IndexedSlices) or self.amsgrad:
            return super().update_step(gradient, variable, learning_rate)
        index = self._get_variable_index(variable)

        def handle(v):
            return (v.value if isinstance(v, keras.Variable) else v).handle

        tf.raw_ops.ResourceApplyAdam(
            var=handle(variable),
            m=handle(self._momentums[index]),
            v=handle(self._velocities[index]),
            grad=tf.cast(gradient, variable.dtype),
            **self._shared_scalars(variable, learning_rate),
        )
