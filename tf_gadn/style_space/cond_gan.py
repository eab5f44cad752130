"""Style- and content-conditioned GAN (style-space paper Section 4, equations 5-9, and Section 5.2).

G's code is [u | v | w], u ~ N(0, I^d_style) a normalised style, v ~ N(0, I^d_content) a content, w the unconditioned
rest. D is a consortium of three networks of the same shape at three scales (Section 5.2): network s sees 4^s random
ss_disc_size patches of the image resized to min(image_size, ss_disc_size * 2^s) -- at 256 px with 64 px networks:
the whole image at 64 px, 4 patches of the 128 px image, 16 patches of the 256 px original. The scale is capped at
the training size (never upsampled); the patch counts stay the paper's. Each network's loss is averaged over its
patches, then over the networks. D minimises eq. (5); G minimises eq. (6): L_GAN + lambda_style L_style +
lambda_content L_content, with the frozen S (output normalised by training-set statistics) and the frozen Enc (mean)
asked to give u and v back. When done, the exploration figures are written (tf_gadn.explore).
"""

from __future__ import annotations

import os

import numpy as np
import tensorflow as tf

from tf_gadn import losses
from tf_gadn.data import color as colorspace
from tf_gadn.evaluation.transfer_eval import TransferModel
from tf_gadn.nn import augment
from tf_gadn.style_space import networks as style_space
from tf_gadn.style_space.common import (
    content_prefix,
    encoder_dir,
    load_style_stats,
    normalise_style,
    require_d_style,
    split_gan_code,
    style_prefix,
)
from tf_gadn.training.stage import Stage

GRID_COLUMNS = 8
LAB_WHITE = (
    1.0,
    0.0,
    0.0,
)  # L = 100, a = b = 0 in model space: the blank corner of the sample grid


def consortium_scales(image_size: int, disc_size: int) -> list[tuple[int, int]]:
    """(size the image is resized to, number of disc_size patches) for each discriminator of the consortium."""
    if disc_size > image_size:
        raise ValueError(f"ss_disc_size {disc_size} exceeds image_size {image_size}")
    return [
        (min(image_size, disc_size * 2**s), 4**s) for s in range(style_space.DISCRIMINATOR_SCALES)
    ]


def patch_uniform_dim(image_size: int, disc_size: int) -> int:
    """Uniforms for one image's patch corners (a row and a column per patch, every scale)."""
    return sum(2 * count for _, count in consortium_scales(image_size, disc_size))


def resize_to(images, size: int):
    """Area down-sampling (exact average pooling when the factor is whole: differentiable and XLA-friendly)."""
    current = images.shape[1]
    if current == size:
        return images
    if current % size == 0:
        return tf.nn.avg_pool2d(images, current // size, current // size, "VALID")
    return tf.image.resize(images, [size, size], antialias=True)


def random_patches(images, uniform, count: int, patch: int):
    """[B, R, R, C] -> [B, count, patch, patch, C]: corners uniform over the R - patch + 1 positions of each axis.

    uniform: [B, 2 * count] in [0, 1) (rows first, then columns), from the pipeline, so patches are stateless. A gather
    of pixel indices: exact pixels (no interpolation), gradients flow to the image, XLA can compile it."""
    size, channels = images.shape[1], images.shape[-1]
    corners = tf.minimum(tf.cast(tf.floor(uniform * (size - patch + 1)), tf.int32), size - patch)
    top, left = corners[:, :count], corners[:, count:]
    offsets = tf.range(patch)
    pixel = (
        (top[:, :, None, None] + offsets[:, None]) * size + left[:, :, None, None] + offsets
    )  # [B, n, p, p]
    batch = tf.shape(images)[0]
    flat = tf.gather(
        tf.reshape(images, [batch, size * size, channels]),
        tf.reshape(pixel, [batch, -1]),
        batch_dims=1,
    )
    return tf.reshape(flat, [batch, count, patch, patch, channels])


def consortium_views(images, uniform, image_size: int, disc_size: int) -> list:
    """What each discriminator sees: one [B, patches, disc, disc, C] tensor per scale."""
    views, start = [], 0
    for size, count in consortium_scales(image_size, disc_size):
        views.append(
            random_patches(
                resize_to(images, size), uniform[:, start : start + 2 * count], count, disc_size
            )
        )
        start += 2 * count
    return views


class CondGanStage(Stage):
    NAME = "cond_gan"
    CONFIG_PREFIX = "cond_gan"
    COLOR = "lab"
    INHERITS = {"style_encoder": ("style_encoder",), "content_vae": ("content_encoder",)}
    FROZEN = ("style_encoder", "content_encoder")

    @classmethod
    def noise_dim(cls, config) -> int:
        return config.gan_code_dim  # u, v, w ~ N(0, I), eq. 6

    @classmethod
    def uniform_dim(cls, config) -> int:
        augmenting = (
            2 * augment.UNIFORMS if config.critic_augment else 0
        )  # zoom/shift of real and generated images
        return (
            2 * patch_uniform_dim(config.image_size, config.ss_disc_size) + augmenting
        )  # + their patches

    def __init__(self, config, artist_counts, global_batch_size):
        super().__init__(config, artist_counts, global_batch_size)
        require_d_style(config)
        names = ["style_encoder", "content_encoder", "generator"] + [
            f"discriminator{s}" for s in range(style_space.DISCRIMINATOR_SCALES)
        ]
        self.classify = config.cond_gan_artist_classifier > 0
        nets = style_space.build_networks(
            config, self.num_artists, names + (["artist_classifier"] if self.classify else [])
        )
        self.artist_classifier = nets.get("artist_classifier")
        self.style_encoder, self.content_encoder, self.generator = (
            nets["style_encoder"],
            nets["content_encoder"],
            nets["generator"],
        )
        self.discriminators = [
            nets[f"discriminator{s}"] for s in range(style_space.DISCRIMINATOR_SCALES)
        ]
        self.style_encoder.trainable = False
        self.content_encoder.trainable = False
        # Filled from the style encoder's statistics file before the first step (not checkpointed: always reloaded).
        self.style_mean = tf.Variable(
            tf.zeros([config.d_style]), trainable=False, name="style_mean"
        )
        self.style_std = tf.Variable(tf.ones([config.d_style]), trainable=False, name="style_std")
        self.add_trackers(
            "objective",
            "d_real",
            "d_fake",
            "gan",
            "style",
            "content",
            *(["reconstruction"] if config.cond_gan_reconstruction else []),
            *(
                ["classifier_real", "classifier_fake", "classifier_adv", "classifier_adv_accuracy"]
                if self.classify
                else []
            ),
        )

    def networks(self):
        nets = {
            "style_encoder": self.style_encoder,
            "content_encoder": self.content_encoder,
            "generator": self.generator,
        }
        nets.update({f"discriminator{s}": d for s, d in enumerate(self.discriminators)})
        if self.classify:
            nets["artist_classifier"] = self.artist_classifier
        return nets

    def make_optimizers(self):
        lr = self.config.cond_gan_lr
        optimizers = {
            "generator": self.new_optimizer("rmsprop", lr),
            "discriminators": self.new_optimizer("rmsprop", lr),
        }
        if self.classify:
            optimizers["artist_classifier"] = self.new_optimizer("rmsprop", lr)
        return optimizers

    def optimized_networks(self):
        parts = {
            "generator": ("generator",),
            "discriminators": tuple(f"discriminator{s}" for s in range(len(self.discriminators))),
        }
        if self.classify:
            parts["artist_classifier"] = ("artist_classifier",)
        return parts

    def after_inheriting(self, inherit_dir):
        """--cond_gan_init=decoder: G starts as the content VAE's decoder (style_space.generator_from_decoder)."""
        if self.config.cond_gan_init != "decoder":
            return
        from tf_gadn.training import checkpoints

        decoder = style_space.build_networks(self.config, self.num_artists, ["decoder"])["decoder"]
        checkpoints.restore_networks(inherit_dir, "content_vae", {"decoder": decoder})
        mean, std = load_style_stats(inherit_dir, self.config.d_style)
        style_space.generator_from_decoder(
            self.generator, decoder, mean, std, self.config.d_style, self.config.d_content
        )

    def before_training(self, make_eval_dataset, model_dir):
        mean, std = load_style_stats(encoder_dir(self.config, model_dir), self.config.d_style)
        self.style_mean.assign(mean)
        self.style_std.assign(std)
        self.artist_styles = None  # each artist's mean u, computed on first use (--eval_every)
        self._make_eval_dataset = make_eval_dataset

    def transfer_model(self):
        """x -> G(u_a', v(x), 0) in RGB, u_a' the mean style code of a' 's training drawings (reference-guided)."""
        if self.artist_styles is None:
            sums = np.zeros([self.num_artists, self.config.d_style])
            counts = np.zeros([self.num_artists, 1])
            for batch in self._make_eval_dataset():
                np.add.at(sums, batch["artist"].numpy(), self.style_code(batch["image"]).numpy())
                np.add.at(counts, batch["artist"].numpy(), 1.0)
            self.artist_styles = (sums / np.maximum(counts, 1.0)).astype(np.float32)

        def transfer(images, source_artists, target_artists):
            del source_artists
            v = self.content_code(colorspace.to_model_space(tf.constant(images, tf.float32), "lab"))
            w = tf.zeros(
                [
                    len(images),
                    self.config.gan_code_dim - self.config.d_style - self.config.d_content,
                ]
            )
            fakes = self.generator([tf.constant(self.artist_styles[target_artists]), v, w])
            return colorspace.to_rgb_m11(fakes, "lab").numpy()

        return TransferModel(transfer)

    def style_code(self, images):
        """u of an image: S(x)^[d_style] normalised with the training-set statistics (Section 4)."""
        return normalise_style(
            style_prefix(self.style_encoder, images, self.config.d_style),
            self.style_mean,
            self.style_std,
        )

    def content_code(self, images):
        return content_prefix(self.content_encoder, images, self.config.d_content)

    def consortium_loss(self, images, uniform, per_logit_loss):
        """[B]: per_logit_loss of every discriminator on its patches, averaged over patches, then over networks."""
        per_patch = []
        for discriminator, view in zip(
            self.discriminators,
            consortium_views(images, uniform, self.config.image_size, self.config.ss_disc_size),
        ):
            logits = discriminator(tf.reshape(view, [-1] + view.shape[2:].as_list()))
            per_patch.append(per_logit_loss(tf.reshape(logits, [tf.shape(view)[0], view.shape[1]])))
        return losses.consortium_mean(per_patch)

    @property
    def zoom_uniforms(self) -> int:
        return 2 * augment.UNIFORMS if self.config.critic_augment else 0

    def train_step(self, batch):
        x = batch["image"]
        u, v, w = split_gan_code(batch["noise"], self.config.d_style, self.config.d_content)
        patches, zooms = tf.split(
            batch["uniform"],
            [batch["uniform"].shape[-1] - self.zoom_uniforms, self.zoom_uniforms],
            axis=-1,
        )
        patches_real, patches_fake = tf.split(patches, 2, axis=-1)

        reconstruct = self.config.cond_gan_reconstruction > 0
        # Besides G(z) on prior codes, one G call may also draw the batch's own drawings from their codes (w = 0, as
        # in transfers) and each drawing's content in the next drawing's style (for the artist classifier).
        groups = [[u, v, w]]
        if reconstruct or self.classify:
            own_style, own_content, blank = (
                self.style_code(x),
                self.content_code(x),
                tf.zeros_like(w),
            )
        if reconstruct:
            groups.append([own_style, own_content, blank])
        if self.classify:
            groups.append([tf.roll(own_style, 1, 0), own_content, blank])
            target_artist = tf.roll(batch["artist"], 1, 0)
        codes = [tf.concat(parts, 0) for parts in zip(*groups)]

        # One G forward serves both updates: D's step does not change G, so G(z) is the same before and after it.
        with tf.GradientTape() as tape:
            drawn = tf.split(self.generator(codes), len(groups))
            fake = drawn[0]
            redrawn = drawn[1] if reconstruct else None
            swapped = drawn[-1] if self.classify else None
            seen_real, seen_fake = augment.critic_views(x, fake, zooms, self.config.critic_augment)
            # D, eq. (5): real images are real, G(z) is not -- on every scale of the consortium.
            with tape.stop_recording(), tf.GradientTape() as d_tape:
                d_real = self.batch_mean(
                    self.consortium_loss(seen_real, patches_real, losses.gan_discriminator_real)
                )
                d_fake = self.batch_mean(
                    self.consortium_loss(
                        tf.stop_gradient(seen_fake), patches_fake, losses.gan_discriminator_fake
                    )
                )
                d_loss = d_real + d_fake
            with tape.stop_recording():
                self.minimize(d_tape, d_loss, "discriminators")
            extra = {}
            if self.classify:
                extra.update(
                    self.artist_classifier_step(tape, x, batch["artist"], swapped, target_artist)
                )
            # G, eqs. (6)-(9): fool the updated D, and let the frozen S and Enc read u and v back off G(z).
            gan = self.batch_mean(
                self.consortium_loss(seen_fake, patches_fake, losses.gan_generator)
            )
            style = self.batch_mean(losses.style_code_loss(self.style_code(fake), u))
            content = self.batch_mean(losses.content_code_loss(self.content_code(fake), v))
            total = gan + self.config.lambda_style * style + self.config.lambda_content * content
            if self.classify:
                total += self.config.cond_gan_artist_classifier * extra["classifier_adv"]
            if reconstruct:
                extra["reconstruction"] = self.batch_mean(losses.code_reconstruction(x, redrawn))
                total += self.config.cond_gan_reconstruction * extra["reconstruction"]
        self.minimize(tape, total, "generator")

        self.track(
            objective=total,
            d_real=d_real,
            d_fake=d_fake,
            gan=gan,
            style=style,
            content=content,
            **extra,
        )
        return self.results()

    def artist_classifier_step(self, tape, x, artist, swapped, target_artist) -> dict:
        """GADN's adversarial C2 (L_C2-real + L_C2-fake, NLL and NLU) on real drawings and on content drawn in another
        drawing's style; then, under G's tape, the NLL of the updated classifier naming the style's artist
        (--cond_gan_artist_classifier)."""
        with tape.stop_recording(), tf.GradientTape() as c_tape:
            real = self.batch_mean(losses.nll(self.artist_classifier(x), artist))
            fake = self.batch_mean(
                losses.nlu(self.artist_classifier(tf.stop_gradient(swapped)), target_artist)
            )
            loss = real + fake
        with tape.stop_recording():
            self.minimize(c_tape, loss, "artist_classifier")
        logits = self.artist_classifier(swapped)
        return {
            "classifier_real": real,
            "classifier_fake": fake,
            "classifier_adv": self.batch_mean(losses.nll(logits, target_artist)),
            "classifier_adv_accuracy": self.batch_mean(self.correct(logits, target_artist)),
        }

    def sample_grid(self, batch):
        """Rows = contents, columns = styles, both from the batch's images (w = 0): the diagonal reconstructs an image
        (Figure 6), the rest are style transfers (Figure 7). A header row and column show the source images."""
        x = batch["image"][:GRID_COLUMNS]
        u, v = self.style_code(x), self.content_code(x)
        n = tf.shape(x)[0]
        noise = tf.zeros(
            [n * n, self.config.gan_code_dim - self.config.d_style - self.config.d_content]
        )
        fakes = self.generator([tf.tile(u, [n, 1]), tf.repeat(v, n, axis=0), noise])
        cells = tf.reshape(fakes, tf.concat([[n, n], tf.shape(x)[1:]], axis=0))
        corner = tf.ones_like(x[:1]) * tf.constant(LAB_WHITE)
        header = tf.concat([corner, x], axis=0)[None]  # [1, n + 1, S, S, 3]
        body = tf.concat([x[:, None], cells], axis=1)  # [n, n + 1, S, S, 3]
        return tf.concat([header, body], axis=0)

    def after_training(self, make_eval_dataset, model_dir):
        """The exploration figures of Sections 6.3-6.4 (tf_gadn.explore), so a finished run shows its style space."""
        from tf_gadn.style_space import explore

        written = explore.explore(model_dir)
        print(
            f"[{self.NAME}] exploration figures: {os.path.dirname(next(iter(written.values())))}",
            flush=True,
        )
