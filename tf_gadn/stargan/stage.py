"""StarGAN's one training stage (StarGAN Section 3, eqs. 5-6; and its training details).

D minimises -L_adv + lambda_cls L_cls^r, with L_adv the WGAN-GP objective (eq. 8): real and generated scores plus
lambda_gp times the gradient penalty at random interpolates. G minimises L_adv + lambda_cls L_cls^f + lambda_rec L_rec,
L_rec the cycle x -> G(x, c') -> G(G(x, c'), c) back to x's own artist c. D is updated every step, G every
`stargan_n_critic` steps (one G update per five D updates in the paper). The target artist c' is the pipeline's
other_artist, the interpolation weight its uniform draw, so a step is a function of its batch alone.
"""

from __future__ import annotations

import keras
import tensorflow as tf

from tf_gadn import losses
from tf_gadn.stargan import common
from tf_gadn.stargan.networks import build_networks
from tf_gadn.training.collapse import Watch
from tf_gadn.training.stage import Stage, output_spread


class StarGanStage(Stage):
    NAME = "stargan"
    CONFIG_PREFIX = "stargan"
    # StarGAN draws target labels by shuffling the batch's own labels, so c' may equal c; drawing a' ~ p(a) keeps that.
    WATCH = Watch(output_spread="output_spread", learning_classifiers=("d_cls_accuracy",))

    @classmethod
    def uniform_dim(cls, config) -> int:
        return 1  # alpha of the gradient-penalty interpolate

    def __init__(self, config, artist_counts, global_batch_size):
        super().__init__(config, artist_counts, global_batch_size)
        nets = build_networks(config, self.num_artists)
        self.generator, self.discriminator = nets["generator"], nets["discriminator"]
        self.add_trackers(
            "d_objective",
            "d_real",
            "d_fake",
            "gradient_penalty",
            "d_cls_real",
            "d_cls_accuracy",
            "g_objective",
            "g_adv",
            "g_cls_fake",
            "g_cls_accuracy",
            "cycle_reconstruction",
            "output_spread",
        )

    def networks(self):
        return {"generator": self.generator, "discriminator": self.discriminator}

    def make_optimizers(self):
        c = self.config
        return {
            name: keras.optimizers.Adam(
                c.stargan_lr, beta_1=c.stargan_beta1, beta_2=c.stargan_beta2
            )
            for name in ("generator", "discriminator")
        }

    def critic_score(self, images):
        return self.discriminator(images)[0]

    def train_step(self, batch):
        x, a, a_target = batch["image"], batch["artist"], batch["other_artist"]
        own_label = tf.one_hot(a, self.num_artists)
        target_label = tf.one_hot(a_target, self.num_artists)
        # Read before D's update: G moves on D steps 0, n, 2n, ... (so the first step trains both).
        generator_due = tf.equal(
            self.optimizers["discriminator"].iterations % self.config.stargan_n_critic, 0
        )

        # One G forward serves both updates: the D step does not change G.
        with tf.GradientTape() as tape:
            fake = self.generator([x, target_label])
            with tape.stop_recording():
                d_terms = self.train_discriminator(x, a, tf.stop_gradient(fake), batch["uniform"])
            g_terms = self.generator_objective(x, a_target, own_label, fake)
        self.minimize(tape, g_terms["g_objective"], "generator", when=generator_due)
        self.track(**d_terms, **g_terms, output_spread=output_spread(fake, x))
        return self.results()

    def train_discriminator(self, x, a, fake, uniform):
        """D: score real above generated (WGAN-GP) and name the artist of real images."""
        c = self.config
        with tf.GradientTape() as tape:
            src_real, cls_real = self.discriminator(x)
            src_fake, _ = self.discriminator(fake)
            d_real = self.batch_mean(losses.wgan_critic_real(src_real))
            d_fake = self.batch_mean(losses.wgan_critic_fake(src_fake))
            penalty = self.batch_mean(
                losses.critic_gradient_penalty(self.critic_score, x, fake, uniform[:, 0])
            )
            d_cls = self.batch_mean(losses.domain_classification(cls_real, a))
            total = d_real + d_fake + c.lambda_gp * penalty + c.lambda_cls * d_cls
        self.minimize(tape, total, "discriminator")
        return {
            "d_objective": total,
            "d_real": d_real,
            "d_fake": d_fake,
            "gradient_penalty": penalty,
            "d_cls_real": d_cls,
            "d_cls_accuracy": self.batch_mean(self.correct(cls_real, a)),
        }

    def generator_objective(self, x, a_target, own_label, fake):
        """G: fool the updated D, be named a' by it, and map back to x under x's own label."""
        c = self.config
        src_fake, cls_fake = self.discriminator(fake)
        g_adv = self.batch_mean(losses.wgan_generator(src_fake))
        g_cls = self.batch_mean(losses.domain_classification(cls_fake, a_target))
        rec = self.batch_mean(losses.cycle_reconstruction(x, self.generator([fake, own_label])))
        return {
            "g_objective": g_adv + c.lambda_cls * g_cls + c.lambda_rec * rec,
            "g_adv": g_adv,
            "g_cls_fake": g_cls,
            "g_cls_accuracy": self.batch_mean(self.correct(cls_fake, a_target)),
            "cycle_reconstruction": rec,
        }

    def transfer_model(self):
        return common.transfer_model(self.generator, self.num_artists)

    def sample_grid(self, batch):
        return common.style_by_content_grid(self.generator, batch["image"], self.num_artists)
