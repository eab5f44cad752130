"""C2 pre-training (GADN Section 3, end): "at the equilibrium C2 is expected to classify real samples effectively", so
C2 first learns L_C2-real = NLL(C2(x), a) on real images only, before stage 2 makes it adversarial."""

from __future__ import annotations

import tensorflow as tf

from tf_gadn import losses
from tf_gadn.gadn import networks as gadn
from tf_gadn.nn import augment
from tf_gadn.training.collapse import Watch
from tf_gadn.training.stage import Stage


class C2Pretrain(Stage):
    NAME = "c2_pretrain"
    CONFIG_PREFIX = "c2"
    WATCH = Watch(learning_classifiers=("classifier_accuracy",))

    @classmethod
    def uniform_dim(cls, config) -> int:
        return augment.UNIFORMS if config.critic_augment else 0

    def __init__(self, config, artist_counts, global_batch_size):
        super().__init__(config, artist_counts, global_batch_size)
        self.classifier2 = gadn.build_networks(config, self.num_artists, ("classifier2",))[
            "classifier2"
        ]
        self.add_trackers("classifier_nll", "classifier_accuracy")

    def networks(self):
        return {"classifier2": self.classifier2}

    def make_optimizers(self):
        return {"classifier2": self.new_optimizer("adam", self.config.c2_lr)}

    def train_step(self, batch):
        x, a = batch["image"], batch["artist"]
        if self.config.critic_augment:  # C2 meets stage 2's zoomed and shifted views already here
            x = augment.zoom_and_shift(x, batch["uniform"])
        with tf.GradientTape() as tape:
            logits = self.classifier2(x)
            loss = self.batch_mean(losses.nll(logits, a))
        self.minimize(tape, loss, "classifier2")
        self.track(
            classifier_nll=loss, classifier_accuracy=self.batch_mean(self.correct(logits, a))
        )
        return self.results()
