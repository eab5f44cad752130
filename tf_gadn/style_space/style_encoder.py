"""Style-space step 1 (Section 3, Table 2 row 1): a metric-learned style encoder, and its classification baseline.

S and the representative styles s_i (with the nested-dropout prefix scales h_d) minimise equation (2) with the
nested-dropout losses of equation (3): images of an artist are pulled to s_i (L_same = t^2) and pushed from every
other s_j (L_diff = exp(-t^2)), averaged over the kept prefix length d ~ truncated geometric(t). On the same batch,
with its own optimizer, a network of the same shape is trained to classify the artist (NLL): Section 6.1's reference,
so one run gives both curves of Figure 1. With --ss_nested_baseline a third network of that shape learns the same NLL
under the metric network's nested dropout (the prefix length d averaged exactly, as in eq. 3), so Figure 1 compares
the losses with the ordering alike, the unordered baseline kept as a second curve. When done: the style statistics the conditional GAN normalises S(x) with
(Section 4) and the pruning report (tf_gadn.pruning) on the held-out split.
"""

from __future__ import annotations

import os

import tensorflow as tf

from tf_gadn import losses
from tf_gadn.style_space import networks as style_space
from tf_gadn.style_space import pruning
from tf_gadn.style_space.common import save_style_stats
from tf_gadn.training.collapse import Watch
from tf_gadn.training.stage import Stage


class StyleEncoderStage(Stage):
    NAME = "style_encoder"
    CONFIG_PREFIX = "style_encoder"
    COLOR = "lab"
    WATCH = Watch(learning_classifiers=("nearest_style_accuracy",))

    def __init__(self, config, artist_counts, global_batch_size):
        super().__init__(config, artist_counts, global_batch_size)
        if self.num_artists < 2:
            raise ValueError(
                "metric learning of style needs at least two artists (equation 2 pushes artists apart)"
            )
        names = ("style_encoder", "representative_styles", "style_classifier")
        names += ("style_classifier_nested",) if config.ss_nested_baseline else ()
        nets = style_space.build_networks(config, self.num_artists, names)
        self.style_encoder = nets["style_encoder"]
        self.representative_styles = nets["representative_styles"]
        self.style_classifier = nets["style_classifier"]
        self.style_classifier_nested = nets.get("style_classifier_nested")
        trackers = (
            "objective",
            "same_artist",
            "different_artist",
            "nearest_style_accuracy",
            "classifier_nll",
            "classifier_accuracy",
        )
        if self.style_classifier_nested is not None:
            trackers += ("nested_classifier_nll", "nested_classifier_accuracy")
        self.add_trackers(*trackers)

    def networks(self):
        nets = {
            "style_encoder": self.style_encoder,
            "representative_styles": self.representative_styles,
            "style_classifier": self.style_classifier,
        }
        if self.style_classifier_nested is not None:
            nets["style_classifier_nested"] = self.style_classifier_nested
        return nets

    def make_optimizers(self):
        lr = self.config.style_encoder_lr
        return {name: self.new_optimizer("adam", lr) for name in self.networks()}

    def train_step(self, batch):
        x, a = batch["image"], batch["artist"]

        # S, s_i, h_d: equation (2) with L'_same, L'_diff of equation (3).
        with tf.GradientTape() as tape:
            prefix_squared = losses.prefix_squared_distances(
                self.style_encoder(x), self.representative_styles.styles
            )
            same, different = losses.nested_metric_learning_loss(
                prefix_squared,
                a,
                self.representative_styles.prefix_scales,
                self.artist_counts,
                self.config.nested_dropout_t,
            )
            same, different = self.batch_mean(same), self.batch_mean(different)
            objective = same + different
        self.minimize(tape, objective, "style_encoder", "representative_styles")

        # The classification baseline (Section 6.1): same network shape, same batch, NLL of the artist.
        with tf.GradientTape() as tape:
            logits = self.style_classifier(x)
            classifier_nll = self.batch_mean(losses.nll(logits, a))
        self.minimize(tape, classifier_nll, "style_classifier")
        extra = {}
        if self.style_classifier_nested is not None:
            extra = self.nested_baseline_step(x, a)

        # Section 6.1's classification rule: the artist whose representative style is nearest (full code, this
        # step's distances).
        self.track(
            objective=objective,
            same_artist=same,
            different_artist=different,
            nearest_style_accuracy=self.batch_mean(self.correct(-prefix_squared[..., -1], a)),
            classifier_nll=classifier_nll,
            classifier_accuracy=self.batch_mean(self.correct(logits, a)),
            **extra,
        )
        return self.results()

    def nested_baseline_step(self, x, a) -> dict:
        """The baseline under nested dropout: NLL of the artist from the first d code dimensions, d ~ p(d) of eq. (3)."""
        with tf.GradientTape() as tape:
            prefix_logits = self.style_classifier_nested.prefix_logits(x)
            nested_nll = self.batch_mean(
                losses.nested_dropout_nll(prefix_logits, a, self.config.nested_dropout_t)
            )
        self.minimize(tape, nested_nll, "style_classifier_nested")
        return {
            "nested_classifier_nll": nested_nll,
            "nested_classifier_accuracy": self.batch_mean(self.correct(prefix_logits[:, -1], a)),
        }

    def after_training(self, make_eval_dataset, model_dir):
        out_dir = os.path.join(model_dir, self.NAME)
        train_sums = pruning.artist_sums(self.networks(), make_eval_dataset(), self.num_artists)
        save_style_stats(out_dir, train_sums["metric"])
        # A run on a data set without a test split still gets its curves, labelled as the train split's.
        split = "test" if pruning.has_images(self.config.data_dir, "test") else "train"
        report = pruning.pruning_report(
            self.networks(), train_sums, pruning.split_batches(self.config, split), split
        )
        pruning.write_report(report, out_dir)
        print(pruning.markdown_table(report), flush=True)
