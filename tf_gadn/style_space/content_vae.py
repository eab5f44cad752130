"""Content VAE (style-space paper Section 4, equation 4): a content encoder that does not encode style.

The decoder gets S(x)^[d_style] from the frozen style encoder "for free", so the content code has no reason to carry
style. Nested dropout ([12]) orders the content code: after reparameterisation a prefix of random length d is kept and
the suffix zeroed, so earlier dimensions learn the most important modes of variation. Equation (4) is the expectation
of the reconstruction error over d ~ p(d) = (1-t)t^(d-1)/(1-t^D); one d per image, drawn by inverse CDF from the
batch's uniform, is an unbiased estimate of it with a single decoder pass. The KL term of the VAE is unchanged (over
all D dimensions). When done, the content pruning curve (reconstruction loss against prefix length) is written.

--content_vae_adversary (not in the paper) adds GADN's device for the same requirement: an MLP learns to name the
artist from the code the decoder gets, and Enc is paid for making it fail (its NLL, capped at chance).
"""

from __future__ import annotations

import math
import os

import numpy as np
import tensorflow as tf

from tf_gadn import losses
from tf_gadn.data import records
from tf_gadn.evaluation import visualize
from tf_gadn.nn.networks import CodeClassifier, reparameterize
from tf_gadn.style_space import networks as style_space
from tf_gadn.style_space.common import style_prefix
from tf_gadn.style_space.pruning import has_images, prefix_lengths, split_batches
from tf_gadn.training.collapse import Watch
from tf_gadn.training.stage import Stage

PRUNING_JSON = "content_pruning.json"
PRUNING_PNG = "content_pruning.png"
PRUNING_IMAGES = 512  # per split: enough for a smooth curve, cheap at any size
PRUNING_KEEP = 0.05  # suggest the shortest prefix within 5% of the way from d=1 to d=D


def check_dropout_t(t: float) -> None:
    if not 0.0 < t < 1.0:
        raise ValueError(f"nested dropout t must be in (0, 1), got {t}")


def sample_prefix_length(uniform, t: float, dim: int):
    """d ~ p(d) = (1-t) t^(d-1) / (1-t^D) on {1..D} by inverse CDF: F(d) = (1-t^d)/(1-t^D), so
    d = ceil(log(1 - u (1 - t^D)) / log t). Stateless: u comes from the input pipeline."""
    check_dropout_t(t)
    tail = 1.0 - t**dim
    d = tf.math.ceil(tf.math.log1p(-tf.cast(uniform, tf.float32) * tail) / math.log(t))
    return tf.cast(tf.clip_by_value(d, 1.0, float(dim)), tf.int32)


def keep_prefix(code, lengths):
    """code^[d]: the first d dimensions of each row kept, the suffix set to zero."""
    return code * tf.sequence_mask(lengths, code.shape[-1], dtype=code.dtype)


def suggest_prefix(lengths, losses_by_length) -> int:
    """The shortest prefix whose loss is within PRUNING_KEEP of the gap between d=1 and d=D above the d=D loss."""
    first, last = losses_by_length[0], losses_by_length[-1]
    for d, loss in zip(lengths, losses_by_length):
        if loss - last <= PRUNING_KEEP * max(first - last, 0.0):
            return int(d)
    return int(lengths[-1])


class ContentVaeStage(Stage):
    NAME = "content_vae"
    CONFIG_PREFIX = "content_vae"
    COLOR = "lab"
    INHERITS = {"style_encoder": ("style_encoder",)}
    FROZEN = ("style_encoder",)
    WATCH = Watch(kl=("content_kl",), reconstruction="reconstruction")

    @classmethod
    def noise_dim(cls, config) -> int:
        return config.content_code_dim  # eps of the reparameterisation

    @classmethod
    def uniform_dim(cls, config) -> int:
        return 1  # the nested-dropout prefix length, by inverse CDF

    def __init__(self, config, artist_counts, global_batch_size):
        super().__init__(config, artist_counts, global_batch_size)
        nets = style_space.build_networks(
            config, self.num_artists, ("style_encoder", "content_encoder", "decoder")
        )
        self.style_encoder, self.content_encoder, self.decoder = (
            nets["style_encoder"],
            nets["content_encoder"],
            nets["decoder"],
        )
        check_dropout_t(
            config.nested_dropout_t
        )  # before any step, not in the middle of the first one
        self.adversary = (
            CodeClassifier(
                config.content_code_dim,
                config.mlp_layers,
                config.mlp_width,
                self.num_artists,
                name="content_classifier",
            )
            if config.content_vae_adversary > 0
            else None
        )
        self.add_trackers(
            "objective",
            "reconstruction",
            "content_kl",
            "mean_prefix_length",
            *(["classifier_nll", "classifier_accuracy"] if self.adversary is not None else []),
        )

    def networks(self):
        nets = {
            "style_encoder": self.style_encoder,
            "content_encoder": self.content_encoder,
            "decoder": self.decoder,
        }
        if self.adversary is not None:
            nets["content_classifier"] = self.adversary
        return nets

    def make_optimizers(self):
        lr = self.config.content_vae_lr
        optimizers = {
            "content_encoder": self.new_optimizer("rmsprop", lr),
            "decoder": self.new_optimizer("rmsprop", lr),
        }
        if self.adversary is not None:
            optimizers["content_classifier"] = self.new_optimizer("rmsprop", lr)
        return optimizers

    def style(self, x):
        """S(x)^[d_style]: the decoder's style input comes from the frozen S, never from the content code."""
        return style_prefix(self.style_encoder, x, self.config.d_style)

    def train_step(self, batch):
        x = batch["image"]
        lengths = sample_prefix_length(
            batch["uniform"][:, 0], self.config.nested_dropout_t, self.config.content_code_dim
        )
        with tf.GradientTape() as tape:
            mean, std = self.content_encoder(x)
            content = keep_prefix(reparameterize(mean, std, batch["noise"]), lengths)
            reconstruction = self.batch_mean(
                losses.squared_reconstruction(x, self.decoder([self.style(x), content]))
            )
            content_kl = self.batch_mean(losses.kl_to_standard_normal(mean, std))
            total = reconstruction + content_kl
            extra = {}
            if self.adversary is not None:
                nll, accuracy = self.code_adversary_step(
                    tape, self.adversary, content, batch["artist"], "content_classifier"
                )
                extra = {"classifier_nll": nll, "classifier_accuracy": accuracy}
                total -= self.config.content_vae_adversary * losses.capped_at_chance(
                    nll, self.num_artists
                )
        self.minimize(tape, total, "content_encoder", "decoder")
        self.track(
            objective=total,
            reconstruction=reconstruction,
            content_kl=content_kl,
            mean_prefix_length=self.batch_mean(tf.cast(lengths, tf.float32)),
            **extra,
        )
        return self.results()

    def sample_grid(self, batch):
        """Rows = images; columns: the input, then its reconstruction from prefixes d = 1, 2, 4, ..., D of Enc(x)."""
        x = batch["image"]
        (mean, _), style = self.content_encoder(x), self.style(x)
        columns = [x] + [
            self.decoder([style, keep_prefix(mean, tf.fill([tf.shape(x)[0]], d))])
            for d in prefix_lengths(self.config.content_code_dim)
        ]
        return tf.stack(columns, axis=1)

    def prefix_losses(self, batches, lengths) -> list[float]:
        """Mean eq.-(4) term per image for each prefix length, on the mean content code (deterministic)."""
        totals, count = np.zeros(len(lengths)), 0
        for batch in batches:
            x = batch["image"]
            (mean, _), style = self.content_encoder(x), self.style(x)
            for k, d in enumerate(lengths):
                rec = self.decoder([style, keep_prefix(mean, tf.fill([tf.shape(x)[0]], d))])
                totals[k] += float(tf.reduce_sum(losses.squared_reconstruction(x, rec)))
            count += int(x.shape[0])
        return [float(v) for v in totals / max(count, 1)]

    def after_training(self, make_eval_dataset, model_dir):
        """Section 4's pruning: reconstruction loss against prefix length on the train (and test) split, JSON + PNG."""
        lengths = prefix_lengths(self.config.content_code_dim)
        take = max(1, PRUNING_IMAGES // 32)
        curves = {"train": self.prefix_losses(make_eval_dataset().take(take), lengths)}
        if has_images(self.config.data_dir, "test"):
            curves["test"] = self.prefix_losses(
                split_batches(self.config, "test", 32).take(take), lengths
            )
        reference = curves.get("test", curves["train"])
        report = {
            "prefix_lengths": lengths,
            "reconstruction_loss": curves,
            "loss": "eq. (4) term per image: squared L2 summed over pixels and Lab channels (model space)",
            "suggested_d_content": suggest_prefix(lengths, reference),
            "rule": f"shortest prefix within {PRUNING_KEEP:.0%} of the d=1 -> d=D gap above the d=D loss",
            "configured_d_content": self.config.d_content,
        }
        folder = os.path.join(model_dir, self.NAME)
        os.makedirs(folder, exist_ok=True)
        records.write_json(os.path.join(folder, PRUNING_JSON), report)
        visualize.line_plot_png(
            {name: (lengths, values) for name, values in curves.items()},
            os.path.join(folder, PRUNING_PNG),
            "content prefix length d",
            "reconstruction loss",
            log_x=True,
            title="content pruning",
        )
