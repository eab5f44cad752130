"""The style-space networks (style-space paper Section 5.2, Table 1), all on Lab images and weight-normalised
residual blocks ([13]); the trunk code is GADN's (`tf_gadn.nn.blocks`), only the sizes and weight norm differ.

S: trunk -> style code (512 before pruning). Representative styles s_i and the nested-dropout prefix scales h_d of
equation (3) are learned with S. Baseline: the same S shape plus a linear classifier (Section 6.1's reference).
Enc: trunk + the extra 512-wide fully connected layer -> (mean, std) of the content code. Dec([S(x)[:d_style], z]).
G([style, content, noise]) -> image. D: three identical 64 px networks, one per scale of the consortium.
"""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

from tf_gadn import losses
from tf_gadn.nn.blocks import TrunkSpec, dense, dense_weights, down_trunk
from tf_gadn.nn.networks import ContentEncoder, Generator, ImageHead, blank_images, float32
from tf_gadn.training.config import Config

DISCRIMINATOR_SCALES = 3


def extra_blocks(config: Config, counts) -> tuple[int, ...]:
    """Table 1's blocks per level as the trunk builds them: stride-1 blocks after each level's resampling block.

    [13] and Table 1 count the resampling block ("1" = that block alone); a config with
    ss_blocks_include_resampling=false counts only the blocks after it."""
    counts = tuple(int(b) for b in counts)
    if not config.ss_blocks_include_resampling:
        return counts
    if min(counts, default=1) < 1:
        raise ValueError(
            f"block counts {counts} include each level's resampling block, so each must be >= 1"
        )
    return tuple(b - 1 for b in counts)


def trunk_spec(config: Config, image_size, channels, blocks, fc_width: int = 0) -> TrunkSpec:
    return TrunkSpec(
        image_size,
        tuple(channels),
        extra_blocks(config, blocks),
        fc_width,
        weight_norm=True,
        block=config.ss_block,
        upsample=config.upsample_conv,
    )


def style_spec(config: Config) -> TrunkSpec:
    return trunk_spec(config, config.image_size, config.ss_style_channels, config.ss_style_blocks)


def vae_spec(config: Config) -> TrunkSpec:
    return trunk_spec(
        config,
        config.image_size,
        config.ss_vae_channels,
        config.ss_vae_blocks,
        config.ss_vae_fc_width,
    )


def generator_spec(config: Config) -> TrunkSpec:
    """Table 1's G; with --cond_gan_init=decoder the decoder's trunk (same levels, plus its F layer) to start from."""
    if config.cond_gan_init == "decoder":
        if (tuple(config.ss_gen_channels), tuple(config.ss_gen_blocks)) != (
            tuple(config.ss_vae_channels),
            tuple(config.ss_vae_blocks),
        ):
            raise ValueError(
                "--cond_gan_init=decoder needs ss_gen_channels/ss_gen_blocks equal to ss_vae_channels/"
                f"ss_vae_blocks, got {config.ss_gen_channels}/{config.ss_gen_blocks} and "
                f"{config.ss_vae_channels}/{config.ss_vae_blocks}"
            )
        return vae_spec(config)
    if config.cond_gan_init != "random":
        raise ValueError(
            f"cond_gan_init must be 'random' or 'decoder', got {config.cond_gan_init!r}"
        )
    return trunk_spec(config, config.image_size, config.ss_gen_channels, config.ss_gen_blocks)


def generator_from_decoder(
    generator,
    decoder,
    style_mean,
    style_std,
    d_style: int,
    d_content: int,
    noise_scale: float = 0.1,
) -> None:
    """Sets G so that G(u, v, 0) = Dec(u * std + mean, [v, 0]): the decoder reads the raw style prefix and the whole
    content code, G the normalised style, the content prefix and noise. Only the first dense layer differs; its
    effective weight (g v / ||v||) is rebuilt with the style rows scaled by std, the mean folded into the bias, the
    content rows past the prefix dropped (nested dropout zeroes them anyway), and the noise rows G's own random
    initial rows times noise_scale, so w starts small but not without gradient. Every other layer is copied."""
    first_g, first_d = generator.trunk.layers[0], decoder.trunk.layers[0]
    kernel = first_d.layer.kernel.numpy()
    effective = kernel * first_d.g.numpy() / np.sqrt(np.sum(kernel**2, axis=0) + 1e-12)
    style_rows = effective[:d_style] * np.asarray(style_std, np.float32)[:, None]
    noise_rows = first_g.layer.kernel.numpy()[d_style + d_content :] * noise_scale
    merged = np.concatenate(
        [style_rows, effective[d_style : d_style + d_content], noise_rows]
    ).astype(np.float32)
    first_g.layer.kernel.assign(merged)
    first_g.g.assign(np.sqrt(np.sum(merged**2, axis=0)))
    first_g.layer.bias.assign(
        first_d.layer.bias.numpy() + np.asarray(style_mean, np.float32) @ effective[:d_style]
    )
    for mine, theirs in zip(generator.trunk.layers[1:], decoder.trunk.layers[1:], strict=True):
        mine.set_weights(theirs.get_weights())


def discriminator_spec(config: Config) -> TrunkSpec:
    return trunk_spec(config, config.ss_disc_size, config.ss_disc_channels, config.ss_disc_blocks)


class StyleEncoder(keras.Model):
    """S(x) -> style code; its first dimensions matter most once trained with nested dropout (equation 3)."""

    def __init__(self, spec: TrunkSpec, code_dim: int, **kwargs):
        super().__init__(**kwargs)
        self.trunk = down_trunk(spec, "trunk")
        self.head = dense(code_dim, weight_norm=True, name="code")
        self(blank_images(spec))

    def call(self, x):
        return float32(self.head(self.trunk(x)))


class RepresentativeStyles(keras.layers.Layer):
    """The learned presumed style s_i of every artist (equation 2) and the per-prefix scales h_d (equation 3)."""

    def __init__(self, num_artists: int, code_dim: int, **kwargs):
        super().__init__(**kwargs)
        self.styles = self.add_weight(
            name="styles",
            shape=(num_artists, code_dim),
            initializer=keras.initializers.RandomNormal(stddev=1.0),
        )
        self.prefix_scales = self.add_weight(
            name="prefix_scales", shape=(code_dim,), initializer="ones"
        )
        self.built = True

    def call(self, artist):
        return float32(tf.gather(self.styles, artist))


class StyleClassifier(keras.Model):
    """Section 6.1's reference: S's shape trained to classify artists; its code is the input of the last layer."""

    def __init__(self, spec: TrunkSpec, code_dim: int, num_artists: int, **kwargs):
        super().__init__(**kwargs)
        self.encoder = StyleEncoder(spec, code_dim, name="encoder")
        self.logits = dense(num_artists, spec.weight_norm_dense, name="logits")
        self(blank_images(spec))

    def call(self, x):
        return float32(self.logits(self.encoder(x)))

    def prefix_logits(self, x):
        """[B, D, A]: the logits from the first d code dimensions alone, d = 1..D (the nested-dropout baseline)."""
        kernel, bias = dense_weights(self.logits)
        return losses.prefix_logits(
            self.encoder(x), tf.cast(kernel, tf.float32), tf.cast(bias, tf.float32)
        )


def build_networks(config: Config, num_artists: int, names=None) -> dict:
    """Style-space networks by their checkpoint names (all, or just `names`), built at once."""
    if config.d_style + config.d_content > config.gan_code_dim:
        raise ValueError(
            f"d_style + d_content = {config.d_style + config.d_content} exceeds gan_code_dim "
            f"{config.gan_code_dim} (the rest of the GAN code is noise)"
        )
    if config.d_style > config.style_code_dim or config.d_content > config.content_code_dim:
        raise ValueError("d_style / d_content cannot exceed the encoders' code lengths")
    builders = {
        "style_encoder": lambda: StyleEncoder(
            style_spec(config), config.style_code_dim, name="style_encoder"
        ),
        "representative_styles": lambda: RepresentativeStyles(
            num_artists, config.style_code_dim, name="representative_styles"
        ),
        "style_classifier": lambda: StyleClassifier(
            style_spec(config), config.style_code_dim, num_artists, name="style_classifier"
        ),
        "content_encoder": lambda: ContentEncoder(
            vae_spec(config), config.content_code_dim, name="content_encoder"
        ),
        "decoder": lambda: Generator(
            vae_spec(config),
            config.d_style + config.content_code_dim,
            config.generator_output,
            name="decoder",
        ),
        "generator": lambda: Generator(
            generator_spec(config), config.gan_code_dim, config.generator_output, name="generator"
        ),
    }
    # --cond_gan_artist_classifier: S's shape with one logit per artist, trained adversarially as GADN's C2.
    builders["artist_classifier"] = lambda: ImageHead(
        style_spec(config), num_artists, name="artist_classifier"
    )
    if config.ss_nested_baseline:
        builders["style_classifier_nested"] = lambda: StyleClassifier(
            style_spec(config), config.style_code_dim, num_artists, name="style_classifier_nested"
        )
    for scale in range(DISCRIMINATOR_SCALES):
        builders[f"discriminator{scale}"] = lambda scale=scale: ImageHead(
            discriminator_spec(config), 1, name=f"discriminator{scale}"
        )
    unknown = set(names or ()) - set(builders)
    if unknown:
        raise ValueError(f"unknown style-space network(s) {sorted(unknown)}")
    return {name: builders[name]() for name in (names or builders)}
