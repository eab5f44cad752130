"""Pieces the GADN stages, evaluation, figures and serving share: drawing codes from E and S with pipeline noise, the
normals fitted to the content codes and to the style table, and the style x content grid."""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from tf_gadn.evaluation.transfer_eval import TransferModel
from tf_gadn.nn.networks import reparameterize

GRID_COLUMNS = 8


def sample_code(network, inputs, eps):
    """(z, mean, std) for E(x) or S(a): the paper's implicit sampling when a code is fed to another network."""
    mean, std = network(inputs)
    return reparameterize(mean, std, eps), mean, std


def style_lr_factor(style_lr_scale: str, artist_counts, global_batch_size: int) -> float:
    """What --style_lr_scale multiplies the style table's learning rate by: 1 for 'none' (the paper); for 'presence'
    1 / sqrt(B s), B s the expected number of the median artist's images in a batch of B (s: its share of the training
    images, by which a and a' are drawn).

    Why: an artist's row of S gets a gradient only in the steps that draw its images, and Keras's Adam and RMSprop
    apply a row gradient once per copy (k copies: m and v both grow k-fold, so the row moves about sqrt(k) lr). Over
    many steps a row with a steady gradient moves about lr sqrt(E[k]) = lr sqrt(B s) per step (tested), where every
    weight of E and G moves about lr. The factor makes each row move about lr too, however many artists share the
    batches: 8 equal artists at batch 16 (E[k] = 2): 0.71; 100 artists (E[k] = 0.16): 2.5."""
    if style_lr_scale == "none":
        return 1.0
    if style_lr_scale != "presence":
        raise ValueError(f"style_lr_scale must be 'none' or 'presence', got {style_lr_scale!r}")
    counts = np.asarray(artist_counts, np.float64)
    if counts.size == 0 or counts.sum() <= 0 or global_batch_size < 1:
        raise ValueError(
            "style_lr_scale='presence' needs artists with images and a batch of at least 1"
        )
    share = float(np.median(counts[counts > 0] / counts.sum()))
    return float(1.0 / np.sqrt(global_batch_size * share))


def style_table_rate(stage, learning_rate: float) -> float:
    """The learning rate a GADN stage trains its style table at: `learning_rate` times style_lr_factor, announced when
    the factor is not 1 so that a run's log says what rate S really had."""
    factor = style_lr_factor(
        stage.config.style_lr_scale, stage.artist_counts, stage.global_batch_size
    )
    if factor != 1.0:
        print(
            f"[{stage.NAME}] style table learning rate {learning_rate:g} x {factor:.2f} = "
            f"{learning_rate * factor:.3g} (--style_lr_scale={stage.config.style_lr_scale})",
            flush=True,
        )
    return learning_rate * factor


def normal_cholesky(cov) -> np.ndarray:
    """Cholesky factor of a fitted covariance, with a little jitter: the style table's is singular whenever there are
    fewer artists than style dimensions."""
    cov = np.asarray(cov, np.float64)
    return np.linalg.cholesky(cov + 1e-6 * np.eye(len(cov)))


def style_distribution(style_table, num_artists: int) -> dict:
    """Figure 3's "style distribution": the full-covariance normal fitted to the artists' mean style codes S(a), as the
    content distribution is fitted to E(x) (mean, cov, count). Its draws are new styles, not any artist's."""
    codes = style_table(tf.range(num_artists))[0].numpy().astype(np.float64)
    cov = np.cov(codes, rowvar=False) if num_artists > 1 else np.zeros([codes.shape[1]] * 2)
    return {"mean": codes.mean(axis=0), "cov": cov, "count": num_artists}


def normal_sampler(stats: dict):
    """rng, n -> [n, d] draws from N(stats mean, stats cov) (content codes for Table 3, styles for Figure 3)."""
    chol = normal_cholesky(stats["cov"])
    return lambda rng, n: stats["mean"] + rng.standard_normal((n, len(stats["mean"]))) @ chol.T


def style_by_content_grid(encoder, generator, style_table, images, num_artists: int):
    """[rows = contents of `images`, cols = artists, S, S, 3], from mean content and mean style codes."""
    content, _ = encoder(images)
    artists = tf.range(min(num_artists, GRID_COLUMNS))
    style, _ = style_table(artists)
    rows, cols = tf.shape(content)[0], tf.shape(style)[0]
    content = tf.repeat(content, cols, axis=0)
    style = tf.tile(style, [rows, 1])
    fakes = generator([content, style])
    return tf.reshape(fakes, tf.concat([[rows, cols], tf.shape(fakes)[1:]], axis=0))


def transfer_model(networks: dict, sample_content=None) -> TransferModel:
    """GADN as the transfer report sees it: x -> G(E(x) mean, S(a') mean); with `sample_content(rng, n)` (codes
    from the fitted content distribution) also samples G(c, S(a') mean)."""

    def generate(content, target_artists):
        style, _ = networks["style_table"](tf.constant(target_artists, tf.int32))
        return networks["generator"]([tf.constant(content, tf.float32), style]).numpy()

    def transfer(images, source_artists, target_artists):
        del source_artists  # the content code carries no style: the source artist is not needed
        return generate(networks["encoder"](tf.constant(images, tf.float32))[0], target_artists)

    def sample(target_artists, rng):
        return np.concatenate(
            [
                generate(sample_content(rng, len(part)), part)
                for part in np.array_split(target_artists, max(1, len(target_artists) // 64))
            ]
        )

    return TransferModel(transfer, sample if sample_content is not None else None)
