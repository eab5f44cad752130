"""GADN stage 1 (Section 3): a style-independent content encoder.

C1 minimises L_C = NLL(C1(G(E(x), S(a'))), a): it sees x's content drawn in another artist's style and must still name
x's artist, which is only possible if style leaked into E(x). L_C's equation draws a' ~ p(a), so a' = a now and then
(`stage1_other_artist=any`, the default); the text and Appendix B.1 say "a different artist" (`=different`). E, G, S minimise
L_rec - lambda_C1 L_C + lambda_E-KL L_E-KL + lambda_S-KL L_S-KL. Appendix B.1 ablation (`stage1_classifier=code`): the
classifier of [3], an MLP on E(x), instead. When done, the content statistics (mean and full covariance of E(x) over
the training set) are stored for stage-2 sampling, Table 3 and export. `stage1_code_adversary` (not in the paper)
keeps C1 and adds that MLP next to it, its NLL capped at chance.
"""

from __future__ import annotations

import os

import numpy as np
import tensorflow as tf

from tf_gadn import losses
from tf_gadn.data import records
from tf_gadn.gadn import networks as gadn
from tf_gadn.gadn.common import (
    sample_code,
    style_by_content_grid,
    style_table_rate,
    transfer_model,
)
from tf_gadn.training.collapse import Watch
from tf_gadn.training.stage import Stage, output_spread

CONTENT_STATS = "content_stats.npz"


class GadnStage1(Stage):
    NAME = "gadn_stage1"
    CONFIG_PREFIX = "stage1"
    WATCH = Watch(
        kl=("content_kl", "style_kl"),
        output_spread="output_spread",
        reconstruction="reconstruction",
    )

    @classmethod
    def distinct_other_artist(cls, config) -> bool:
        """L_C's equation draws a' ~ p(a) ('any'); the text says a' is "a different artist" ('different')."""
        if config.stage1_other_artist not in ("any", "different"):
            raise ValueError(
                f"stage1_other_artist must be 'any' or 'different', got {config.stage1_other_artist!r}"
            )
        return config.stage1_other_artist == "different"

    @classmethod
    def noise_dim(cls, config) -> int:
        return config.content_dim + 2 * config.style_dim  # eps for E(x), S(a), S(a')

    def __init__(self, config, artist_counts, global_batch_size):
        super().__init__(config, artist_counts, global_batch_size)
        self.on_code = config.stage1_classifier == "code"
        if config.stage1_classifier not in ("generated", "code"):
            raise ValueError(
                f"stage1_classifier must be 'generated' or 'code', got {config.stage1_classifier!r}"
            )
        classifier = "code_classifier" if self.on_code else "classifier1"
        nets = gadn.build_networks(
            config, self.num_artists, ("encoder", "generator", "style_table", classifier)
        )
        self.encoder, self.generator, self.style_table = (
            nets["encoder"],
            nets["generator"],
            nets["style_table"],
        )
        self.classifier = nets[classifier]
        self.classifier_name = classifier
        self.code_adversary = None
        if config.stage1_code_adversary > 0:
            if self.on_code:
                raise ValueError(
                    "stage1_code_adversary adds an MLP on E(x) next to C1 on generated images; with "
                    "stage1_classifier=code C1 already is that MLP"
                )
            self.code_adversary = gadn.build_networks(
                config, self.num_artists, ("code_classifier",)
            )["code_classifier"]
        self.add_trackers(
            "objective",
            "reconstruction",
            "classifier_nll",
            "classifier_accuracy",
            *(
                ["code_classifier_nll", "code_classifier_accuracy"]
                if self.code_adversary is not None
                else []
            ),
            "content_kl",
            "style_kl",
            "output_spread",
        )

    def networks(self):
        nets = {
            "encoder": self.encoder,
            "generator": self.generator,
            "style_table": self.style_table,
            self.classifier_name: self.classifier,
        }
        if self.code_adversary is not None:
            nets["code_classifier"] = self.code_adversary
        return nets

    def make_optimizers(self):
        lr = self.config.stage1_lr
        style_lr = style_table_rate(self, self.config.stage1_style_lr)
        return {
            "encoder": self.new_optimizer("adam", lr),
            "generator": self.new_optimizer("adam", lr),
            "style_table": self.new_optimizer("adam", style_lr),
            "classifier": self.new_optimizer("adam", lr),
            **(
                {"code_classifier": self.new_optimizer("adam", lr)}
                if self.code_adversary is not None
                else {}
            ),
        }

    def optimized_networks(self):
        return {**super().optimized_networks(), "classifier": (self.classifier_name,)}

    def train_step(self, batch):
        x, a, a_other = batch["image"], batch["artist"], batch["other_artist"]
        eps_content, eps_style, eps_other = tf.split(
            batch["noise"],
            [self.config.content_dim, self.config.style_dim, self.config.style_dim],
            axis=-1,
        )

        # One forward of E and G serves both updates: C1's step does not change them.
        with tf.GradientTape() as tape:
            content, content_mean, content_std = sample_code(self.encoder, x, eps_content)
            style, style_mean, style_std = sample_code(self.style_table, a, eps_style)
            style_other, _, _ = sample_code(self.style_table, a_other, eps_other)
            if self.on_code:  # the MLP of the Appendix B.1 ablation reads E(x)
                seen_by_c1, reconstructed = content, None
            else:  # one G pass at 2B: x's content in the style of a' (C1's input) and in its own (the reconstruction)
                seen_by_c1, reconstructed = tf.split(
                    self.generator(
                        [tf.concat([content, content], 0), tf.concat([style_other, style], 0)]
                    ),
                    2,
                )

            # C1: name the true artist of x from x's content drawn in the style of a' != a.
            with tape.stop_recording(), tf.GradientTape() as c1_tape:
                classifier_loss = self.batch_mean(
                    losses.nll(self.classifier(tf.stop_gradient(seen_by_c1)), a)
                )
            with tape.stop_recording():
                self.minimize(c1_tape, classifier_loss, "classifier")

            # E, G, S: reconstruct x with its own style, fool the updated C1, keep both code distributions near N(0, I).
            if reconstructed is None:
                reconstructed = self.generator([content, style])
            reconstruction = self.batch_mean(losses.pixel_distance(x, reconstructed))
            logits = self.classifier(seen_by_c1)
            adversarial = self.batch_mean(losses.nll(logits, a))
            if self.config.cap_c1_at_chance:
                adversarial = losses.capped_at_chance(adversarial, self.num_artists)
            content_kl = self.batch_mean(losses.kl_to_standard_normal(content_mean, content_std))
            style_kl = self.batch_mean(losses.kl_to_standard_normal(style_mean, style_std))
            total = (
                reconstruction
                - self.config.lambda_c1 * adversarial
                + self.config.lambda_e_kl * content_kl
                + self.config.lambda_s_kl * style_kl
            )
            extra = {}
            if self.code_adversary is not None:  # on E(x)'s mean: the code transfers read
                nll, accuracy = self.code_adversary_step(
                    tape, self.code_adversary, content_mean, a, "code_classifier"
                )
                extra = {"code_classifier_nll": nll, "code_classifier_accuracy": accuracy}
                total -= self.config.stage1_code_adversary * losses.capped_at_chance(
                    nll, self.num_artists
                )
        self.minimize(tape, total, "encoder", "generator", "style_table")

        self.track(
            objective=total,
            reconstruction=reconstruction,
            classifier_nll=classifier_loss,
            classifier_accuracy=self.batch_mean(self.correct(logits, a)),
            content_kl=content_kl,
            style_kl=style_kl,
            output_spread=output_spread(reconstructed, x),
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

    def after_training(self, make_eval_dataset, model_dir):
        codes = np.concatenate(
            [self.encoder(batch["image"])[0].numpy() for batch in make_eval_dataset()]
        )
        path = os.path.join(model_dir, self.NAME, CONTENT_STATS)
        with records.atomic_file(path, ".npz") as tmp:
            np.savez(
                tmp, mean=codes.mean(axis=0), cov=np.cov(codes, rowvar=False), count=len(codes)
            )


def load_content_stats(model_dir: str, inherit_dir: str = "") -> dict:
    """Mean and full covariance of E(x) over the training set (content codes are sampled from N(mean, cov)); a run
    that inherited stage 1 (a stage-2-only ablation) has them in its `inherit_dir`."""
    path = os.path.join(model_dir, GadnStage1.NAME, CONTENT_STATS)
    if not os.path.exists(path) and inherit_dir:
        path = os.path.join(inherit_dir, GadnStage1.NAME, CONTENT_STATS)
    if not os.path.exists(path):
        raise FileNotFoundError(f"{path!r} is missing: it is written when GADN stage 1 finishes")
    return dict(np.load(path))
