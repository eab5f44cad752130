"""GADN stage 2 (Section 3): the dual-conditional generator.

E is frozen (inherited from stage 1, with G and S; C2 comes from its pre-training). D minimises L_D-real + L_D-fake
(LSGAN, a=-1, b=1, c=0); C2 minimises L_C2-real + L_C2-fake, the NLU term teaching it "not by a'" on generated images
(Appendix B.2 ablation `adversarial_c2=false`: L_C2-real only); G and S minimise
lambda_D L_D-adv + lambda_C2 L_C2-adv + lambda_cont L_cont + lambda_S-KL L_S-KL (+ stage 1's reconstruction with
--stage2_reconstruction, not in the paper). L_cont's target is the content code G received, a sample of E(x)
(`content_loss_target=mean`: E(x)'s mean, as before that flag).
"""

from __future__ import annotations

import tensorflow as tf

from tf_gadn import losses
from tf_gadn.gadn import networks as gadn
from tf_gadn.gadn.common import (
    sample_code,
    style_by_content_grid,
    style_table_rate,
    transfer_model,
)
from tf_gadn.nn import augment
from tf_gadn.training.stage import Stage


class GadnStage2(Stage):
    NAME = "gadn_stage2"
    CONFIG_PREFIX = "stage2"
    INHERITS = {
        "gadn_stage1": ("encoder", "generator", "style_table"),
        "c2_pretrain": ("classifier2",),
    }
    FROZEN = ("encoder",)

    @classmethod
    def noise_dim(cls, config) -> int:
        return config.content_dim + config.style_dim  # eps for E(x) and S(a')

    @classmethod
    def uniform_dim(cls, config) -> int:
        return (
            2 * augment.UNIFORMS if config.critic_augment else 0
        )  # zoom/shift of real and of generated images

    def __init__(self, config, artist_counts, global_batch_size):
        super().__init__(config, artist_counts, global_batch_size)
        nets = gadn.build_networks(
            config,
            self.num_artists,
            ("encoder", "generator", "style_table", "classifier2", "discriminator"),
        )
        self.encoder, self.generator, self.style_table = (
            nets["encoder"],
            nets["generator"],
            nets["style_table"],
        )
        self.classifier2, self.discriminator = nets["classifier2"], nets["discriminator"]
        self.add_trackers(
            "objective",
            "d_real",
            "d_fake",
            "c2_real",
            "c2_fake",
            "c2_real_accuracy",
            "c2_fake_accuracy",
            "d_adv",
            "c2_adv",
            "content",
            "style_kl",
            *(["reconstruction"] if config.stage2_reconstruction else []),
        )
        self.reconstruct = config.stage2_reconstruction > 0
        if config.content_loss_target not in ("sample", "mean"):
            raise ValueError(
                f"content_loss_target must be 'sample' or 'mean', got {config.content_loss_target!r}"
            )

    def networks(self):
        return {
            "encoder": self.encoder,
            "generator": self.generator,
            "style_table": self.style_table,
            "classifier2": self.classifier2,
            "discriminator": self.discriminator,
        }

    def make_optimizers(self):
        lr = self.config.stage2_lr
        return {
            "generator": self.new_optimizer("rmsprop", lr),
            "style_table": self.new_optimizer(
                "rmsprop", style_table_rate(self, self.config.stage2_style_lr)
            ),
            "discriminator": self.new_optimizer("rmsprop", lr),
            "classifier2": self.new_optimizer("rmsprop", lr),
        }

    def train_step(self, batch):
        x, a, a_other = batch["image"], batch["artist"], batch["other_artist"]
        eps_content, eps_other = tf.split(
            batch["noise"], [self.config.content_dim, self.config.style_dim], axis=-1
        )
        content, content_mean, _ = sample_code(
            self.encoder, x, eps_content
        )  # E is fixed in stage 2

        # One G forward serves both updates: the D/C2 step does not change G or S, so G(E(x), S(a')) is the same
        # before and after it.
        with tf.GradientTape() as tape:
            style_other, style_mean, style_std = sample_code(self.style_table, a_other, eps_other)
            if self.reconstruct:  # x in its own artist's (mean) style, drawn in the same G call
                fake, redrawn = tf.split(
                    self.generator(
                        [
                            tf.concat([content, content], 0),
                            tf.concat([style_other, self.style_table(a)[0]], 0),
                        ]
                    ),
                    2,
                )
            else:
                fake = self.generator([content, style_other])
            seen_real, seen_fake = augment.critic_views(
                x, fake, batch.get("uniform"), self.config.critic_augment
            )
            # D and C2 on real images and on x's content drawn in the style of a'.
            with tape.stop_recording(), tf.GradientTape(persistent=True) as critic_tape:
                d_real = self.batch_mean(losses.lsgan_real(self.discriminator(seen_real)))
                d_fake = self.batch_mean(
                    losses.lsgan_fake(self.discriminator(tf.stop_gradient(seen_fake)))
                )
                logits_real = self.classifier2(seen_real)
                logits_fake = self.classifier2(tf.stop_gradient(seen_fake))
                c2_real = self.batch_mean(losses.nll(logits_real, a))
                c2_fake = self.batch_mean(losses.nlu(logits_fake, a_other))
                c2_loss = c2_real + c2_fake if self.config.adversarial_c2 else c2_real
                d_loss = d_real + d_fake
            with tape.stop_recording():
                self.minimize(critic_tape, d_loss, "discriminator")
                self.minimize(critic_tape, c2_loss, "classifier2")
            del critic_tape
            # G and S: fool the updated D, be named a' by the updated C2, keep x's content, keep S near N(0, I).
            d_adv = self.batch_mean(losses.lsgan_generator(self.discriminator(seen_fake)))
            logits_adv = self.classifier2(seen_fake)
            c2_adv = self.batch_mean(losses.nll(logits_adv, a_other))
            # L_cont's E(x) is the code G was given (the paper samples E(x) whenever a network receives it).
            target = content if self.config.content_loss_target == "sample" else content_mean
            content_loss = self.batch_mean(losses.content_loss(self.encoder(fake)[0], target))
            style_kl = self.batch_mean(losses.kl_to_standard_normal(style_mean, style_std))
            total = (
                self.config.lambda_d * d_adv
                + self.config.lambda_c2 * c2_adv
                + self.config.lambda_cont * content_loss
                + self.config.lambda_s_kl * style_kl
            )
            extra = {}
            if self.reconstruct:
                extra["reconstruction"] = self.batch_mean(losses.pixel_distance(x, redrawn))
                total += self.config.stage2_reconstruction * extra["reconstruction"]
        self.minimize(tape, total, "generator", "style_table")

        self.track(
            objective=total,
            d_real=d_real,
            d_fake=d_fake,
            c2_real=c2_real,
            c2_fake=c2_fake,
            c2_real_accuracy=self.batch_mean(self.correct(logits_real, a)),
            c2_fake_accuracy=self.batch_mean(self.correct(logits_adv, a_other)),
            d_adv=d_adv,
            c2_adv=c2_adv,
            content=content_loss,
            style_kl=style_kl,
            **extra,
        )
        return self.results()

    def transfer_model(self):
        return transfer_model(
            {"encoder": self.encoder, "generator": self.generator, "style_table": self.style_table}
        )

    def sample_grid(self, batch):
        return style_by_content_grid(
            self.encoder, self.generator, self.style_table, batch["image"], self.num_artists
        )
