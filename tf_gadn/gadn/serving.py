"""GADN's serving module (BUILD.md, "Serving"): its core functions on model-space images, which
`tf_gadn.serving.export.ServingModule` wraps into every wire signature."""

from __future__ import annotations

import tensorflow as tf

from tf_gadn.gadn.common import normal_cholesky, style_distribution
from tf_gadn.gadn.stage1 import load_content_stats
from tf_gadn.serving.export import ARTIST, IMAGE, ServingModule


class GadnServing(ServingModule):
    """GADN (Sections 3-4): content E(x), per-artist style table S(a), generator G, adversarial classifier C2."""

    def __init__(self, config, artists, networks, model_dir):
        super().__init__(config, artists, model_dir)
        self.encoder, self.generator = networks["encoder"], networks["generator"]
        self.style_table = networks["style_table"]
        self.classifier = networks.get("classifier2", networks.get("classifier1"))
        stats = load_content_stats(model_dir, config.inherit_dir)
        # content codes are drawn from the full-covariance normal fitted to E(x) (Appendix B.2, Table 3), new styles
        # from the one fitted to the artists' style codes (Figure 3)
        self.content_mean = tf.constant(stats["mean"], tf.float32)
        self.content_chol = tf.constant(normal_cholesky(stats["cov"]), tf.float32)
        styles = style_distribution(self.style_table, self.num_artists)
        self.style_mean = tf.constant(styles["mean"], tf.float32)
        self.style_chol = tf.constant(normal_cholesky(styles["cov"]), tf.float32)
        self.content_dim, self.style_dim = config.content_dim, config.style_dim

    def functions(self):
        table = {
            "transfer": (self.transfer, {"image": IMAGE, "artist_id": ARTIST}),
            "generate": (
                self.generate,
                {
                    "content": tf.TensorSpec([None, self.content_dim], tf.float32, "content"),
                    "style": tf.TensorSpec([None, self.style_dim], tf.float32, "style"),
                },
            ),
            "encode_content": (self.encode_content, {"image": IMAGE}),
            "sample": (
                self.sample,
                {"artist_id": ARTIST, "seed": tf.TensorSpec([None], tf.int64, "seed")},
            ),
            "sample_random_style": (
                self.sample_random_style,
                {
                    "seed": tf.TensorSpec([None], tf.int64, "seed"),
                    "style_seed": tf.TensorSpec([None], tf.int64, "style_seed"),
                },
            ),
        }
        if self.classifier is not None:
            table["classify"] = (self.classify, {"image": IMAGE})
        table.update(
            self.explorer_functions(
                {"content": table["generate"][1]["content"], "style": table["generate"][1]["style"]}
            )
        )
        table["transfer_with_strength"][1]["source_artist_id"] = tf.TensorSpec(
            [None], tf.int32, "source_artist_id"
        )
        return table

    def phone_tables(self):
        styles = self.style_table(tf.range(self.num_artists))[0]
        return {
            "artists": [n.decode() for n in self.artist_names.numpy()],
            "style_table": styles.numpy().tolist(),
            "content_mean": self.content_mean.numpy().tolist(),
            "content_cholesky": self.content_chol.numpy().tolist(),
            "style_mean": self.style_mean.numpy().tolist(),
            "style_cholesky": self.style_chol.numpy().tolist(),
        }

    def transfer(self, image, artist_id):
        """x's content drawn by artist a': G(E(x).mean, S(a').mean)."""
        return self.generate(self.encoder(image)[0], self.style_table(artist_id)[0])

    def generate(self, content, style):
        return {"image": self.generator([content, style])}

    def encode_content(self, image):
        mean, std = self.encoder(image)
        return {"content_mean": mean, "content_std": std}

    def classify(self, image):
        return self.artist_prediction(self.classifier(image))

    def artist_style(self, artist_id):
        return {"style": self.style_table(artist_id)[0]}

    def transfer_with_strength(self, image, artist_id, strength, keep_colors, source_artist_id):
        """G(E(x), S(a) + strength (S(a') - S(a))) with a the source's artist (GADN has no style encoder): 0 redraws
        x in its own artist's style, 1 is transfer, > 1 exaggerates what sets a' apart from a."""
        source = self._artist_ids(source_artist_id, by_name=False, checked=True)
        own, target = self.style_table(source)[0], self.style_table(artist_id)[0]
        style = own + strength[:, None] * (target - own)
        return self.render_pixels(image, keep_colors, content=self.encoder(image)[0], style=style)

    def sample(self, artist_id, seed):
        """A new portrait by a: content ~ N(mean, cov) of E(x) drawn from `seed` (same seed, same content)."""
        content = self.drawn(seed, self.content_mean, self.content_chol)
        return {**self.generate(content, self.style_table(artist_id)[0]), "content": content}

    def sample_random_style(self, seed, style_seed):
        """A new portrait by no artist (Figure 3): content as `sample` draws it from `seed`, style from the normal
        fitted to the style table, drawn from `style_seed` (one seed fixed, the other varied: Figure 3's rows)."""
        content = self.drawn(seed, self.content_mean, self.content_chol)
        style = self.drawn(style_seed, self.style_mean, self.style_chol)
        return {**self.generate(content, style), "content": content, "style": style}

    def drawn(self, seed, mean, chol):
        """mean + L z, z ~ N(0, I) a function of the seed alone."""
        return mean + tf.matmul(self.seeded_normal(seed, mean.shape[0]), chol, transpose_b=True)
