"""What the content VAE, the conditional GAN and the tools that look at them share (style-space paper Section 4):
the pruned style code S(x)[:d_style], its training-set statistics, and the GAN's three code parts.

"For this part [the GAN], the output of S is normalized to have zero mean and unit variance with style statistics from
the training set": the style encoder stage writes those statistics (mean, std of S(x)[:, :d_style] over the train
split) to <model_dir>/style_encoder/style_stats.npz; `load_style_stats` reads them and `StyleSpace` applies them.
"""

from __future__ import annotations

import dataclasses
import os

import numpy as np
import tensorflow as tf

from tf_gadn.data import records

BATCH = 64
STYLE_STATS = "style_stats.npz"


def style_prefix(style_encoder, x, d_style: int):
    """S(x)^[d_style]: the style dimensions kept after pruning (Section 5.2: the first 32)."""
    return style_encoder(x)[:, :d_style]


def content_prefix(content_encoder, x, d_content: int):
    """v of an image: the mean of the VAE encoder, first d_content dimensions (its variance is not used; Section 4)."""
    return content_encoder(x)[0][:, :d_content]


def normalise_style(raw_style, mean, std):
    """(S(x) - mean) / std with training-set statistics, so the GAN's u ~ N(0, I) covers the styles of real images."""
    return (raw_style - mean) / std


def style_stats_path(model_dir: str) -> str:
    return os.path.join(model_dir, "style_encoder", STYLE_STATS)


def encoder_dir(config, model_dir: str) -> str:
    """The run whose style encoder stage wrote the statistics and pruning report a run uses: its own, or, for a run
    that trained only later stages (--inherit_dir), the inherited run's."""
    own = os.path.exists(style_stats_path(model_dir)) or not config.inherit_dir
    return model_dir if own else config.inherit_dir


def require_d_style(config) -> None:
    """Refuses a style code of no dimensions: --d_style=0 is resolved from the pruning report (pruning.configured)."""
    if config.d_style < 1:
        raise ValueError(
            "--d_style=0 takes the style encoder's pruning choice (style_encoder/pruning.json), which this run "
            "does not have yet: train the style_encoder stage first, pass --inherit_dir of a run that did, or "
            "set --d_style"
        )


def save_style_stats(out_dir: str, train_sums) -> str:
    """Mean and std of every dimension of S(x) over the train split (train_sums: pruning.ArtistSums of the metric
    network), written atomically into out_dir. All dimensions, not just d_style's: d_style is read off the pruning
    curve S writes at the same time (Section 4), so a later stage may choose another prefix without retraining S."""
    mean, std = train_sums.mean_and_std()
    path = os.path.join(out_dir, STYLE_STATS)
    os.makedirs(out_dir, exist_ok=True)
    with records.atomic_file(path, ".npz") as tmp:
        np.savez(
            tmp,
            mean=mean.astype(np.float32),
            std=std.astype(np.float32),
            count=int(train_sums.counts.sum()),
        )
    return path


def read_style_stats(model_dir: str) -> dict:
    """The statistics file as written: {"mean": [D], "std": [D], "count"} (older runs: [d_style])."""
    path = style_stats_path(model_dir)
    if not os.path.exists(path):
        raise FileNotFoundError(
            f"{path!r} is missing: it is written when the style_encoder stage finishes"
        )
    return dict(np.load(path))


def load_style_stats(model_dir: str, d_style: int) -> tuple[np.ndarray, np.ndarray]:
    """(mean, std) of S(x)^[d_style], float32; std floored so a dead dimension cannot divide by zero."""
    stats = read_style_stats(model_dir)
    mean, std = np.asarray(stats["mean"], np.float32), np.asarray(stats["std"], np.float32)
    if mean.shape[-1] < d_style:
        raise ValueError(
            f"the style statistics of {model_dir!r} cover {mean.shape[-1]} dimensions, "
            f"d_style is {d_style}"
        )
    return mean[:d_style], np.maximum(std[:d_style], 1e-6)


def split_gan_code(code, d_style: int, d_content: int):
    """G's code [u | v | w]: style (d_style), content (d_content), unconditioned noise (the rest), eq. 6."""
    return code[:, :d_style], code[:, d_style : d_style + d_content], code[:, d_style + d_content :]


@dataclasses.dataclass
class StyleSpace:
    """A trained model seen through its codes: u = normalised S(x)^[d_style], v = Enc(x) mean^[d_content], G(u, v, w).

    Exploration, evaluation and export use this, so every tool encodes and generates exactly as the GAN was trained."""

    config: object
    style_encoder: object
    content_encoder: object
    generator: object
    style_mean: np.ndarray
    style_std: np.ndarray

    @property
    def noise_dim(self) -> int:
        return self.config.gan_code_dim - self.config.d_style - self.config.d_content

    def _batched(self, fn, images) -> np.ndarray:
        images = np.asarray(images, np.float32)
        return np.concatenate(
            [fn(tf.constant(images[i : i + BATCH])).numpy() for i in range(0, len(images), BATCH)]
        )

    def style(self, images) -> np.ndarray:
        return self._batched(
            lambda x: normalise_style(
                style_prefix(self.style_encoder, x, self.config.d_style),
                self.style_mean,
                self.style_std,
            ),
            images,
        )

    def content(self, images) -> np.ndarray:
        return self._batched(
            lambda x: content_prefix(self.content_encoder, x, self.config.d_content), images
        )

    def generate(self, u, v, w=None) -> np.ndarray:
        """G(u, v, w) in Lab model space; w = 0 (the mode of the noise prior) when not given."""
        u, v = np.asarray(u, np.float32), np.asarray(v, np.float32)
        w = (
            np.zeros((len(u), self.noise_dim), np.float32)
            if w is None
            else np.asarray(w, np.float32)
        )
        if not len(u) == len(v) == len(w):
            raise ValueError(
                f"u, v, w need the same number of rows, got {len(u)}, {len(v)}, {len(w)}"
            )
        return np.concatenate(
            [
                self.generator([u[i : i + BATCH], v[i : i + BATCH], w[i : i + BATCH]]).numpy()
                for i in range(0, len(u), BATCH)
            ]
        )


def load_style_space(model_dir: str) -> StyleSpace:
    """The run's S, Enc and G (each from the last stage that trained it) and the style statistics."""
    from tf_gadn.training import checkpoints

    config, _, networks = checkpoints.load_trained(model_dir)
    if config.method != "style_space":
        raise ValueError(
            f"{model_dir!r} was trained with method {config.method!r}, not 'style_space'"
        )
    missing = [n for n in ("style_encoder", "content_encoder", "generator") if n not in networks]
    if missing:
        raise FileNotFoundError(
            f"{model_dir!r} has no trained {', '.join(missing)} yet: train the whole chain first"
        )
    require_d_style(config)
    mean, std = load_style_stats(encoder_dir(config, model_dir), config.d_style)
    return StyleSpace(
        config,
        networks["style_encoder"],
        networks["content_encoder"],
        networks["generator"],
        mean,
        std,
    )
