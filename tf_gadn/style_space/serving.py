"""The style space's serving module (BUILD.md, "Serving"): its core functions on model-space Lab images,
which `tf_gadn.serving.export.ServingModule` wraps into every wire signature."""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from tf_gadn.serving.export import ARTIST, IMAGE, IMAGES, ServingModule
from tf_gadn.style_space.common import (
    encoder_dir,
    load_style_stats,
    normalise_style,
    require_d_style,
)


class StyleSpaceServing(ServingModule):
    """Style space (that paper's Sections 4-5.2), in Lab: G([u, v, w]) with u a normalised style (an image's
    S(x)[:d_style], or an artist's representative style s_a), v = Enc(x).mean[:d_content], w the noise (0 unless
    sampling). Adds encode_style and transfer_by_reference: styles from reference images, so artists never seen in
    training work too."""

    color = "lab"

    def __init__(self, config, artists, networks, model_dir):
        super().__init__(config, artists, model_dir)
        missing = [
            n
            for n in ("style_encoder", "content_encoder", "generator", "representative_styles")
            if n not in networks
        ]
        if missing:
            raise FileNotFoundError(
                f"{model_dir!r} has no trained {', '.join(missing)}: train the whole chain first"
            )
        self.style_encoder, self.content_encoder = (
            networks["style_encoder"],
            networks["content_encoder"],
        )
        self.generator, self.representative_styles = (
            networks["generator"],
            networks["representative_styles"],
        )
        require_d_style(config)
        mean, std = load_style_stats(encoder_dir(config, model_dir), config.d_style)
        self.style_mean, self.style_std = tf.constant(mean), tf.constant(std)
        self.d_style, self.d_content = config.d_style, config.d_content
        self.noise_dim = config.gan_code_dim - config.d_style - config.d_content

    def functions(self):
        return {
            "transfer": (self.transfer, {"image": IMAGE, "artist_id": ARTIST}),
            "generate": (
                self.generate,
                {
                    "content": tf.TensorSpec([None, self.d_content], tf.float32, "content"),
                    "style": tf.TensorSpec([None, self.d_style], tf.float32, "style"),
                },
            ),
            "encode_content": (self.encode_content, {"image": IMAGE}),
            "classify": (self.classify, {"image": IMAGE}),
            "sample": (
                self.sample,
                {"artist_id": ARTIST, "seed": tf.TensorSpec([None], tf.int64, "seed")},
            ),
            "encode_style": (self.encode_style, {"image": IMAGE}),
            "transfer_by_reference": (
                self.transfer_by_reference,
                {"image": IMAGE, "reference_images": IMAGES},
            ),
            **self.explorer_functions(
                {
                    "content": tf.TensorSpec([None, self.d_content], tf.float32, "content"),
                    "style": tf.TensorSpec([None, self.d_style], tf.float32, "style"),
                    "noise": tf.TensorSpec([None, self.noise_dim], tf.float32, "noise"),
                }
            ),
        }

    def phone_tables(self):
        """Styles u(a) of every artist; content v ~ N(0, I), the GAN's prior (the noise w stays 0 on the phone)."""
        styles = self.artist_style(tf.range(self.num_artists))["style"]
        return {
            "artists": [n.decode() for n in self.artist_names.numpy()],
            "style_table": styles.numpy().tolist(),
            "content_mean": [0.0] * self.d_content,
            "content_cholesky": np.eye(self.d_content).tolist(),
        }

    def normalised(self, style_code):
        return normalise_style(style_code[:, : self.d_style], self.style_mean, self.style_std)

    def artist_style(self, artist_id):
        return {"style": self.normalised(self.representative_styles(artist_id))}

    def generate(self, content, style, noise=None):
        """G(u, v, w); w = 0, the mode of the noise prior, unless given."""
        noise = tf.zeros([tf.shape(content)[0], self.noise_dim]) if noise is None else noise
        return {"image": self.generator([style, content, noise])}

    def encode_content(self, image):
        mean, std = self.content_encoder(image)
        return {"content_mean": mean[:, : self.d_content], "content_std": std[:, : self.d_content]}

    def transfer(self, image, artist_id):
        return self.generate(
            self.encode_content(image)["content_mean"], self.artist_style(artist_id)["style"]
        )

    def classify(self, image):
        """Section 6.1's rule: the artist whose representative style is nearest to S(x)."""
        code = self.style_encoder(image)
        styles = self.representative_styles.styles
        return self.artist_prediction(
            -tf.reduce_sum(tf.square(code[:, None, :] - styles[None, :, :]), axis=-1)
        )

    def sample(self, artist_id, seed):
        """A new portrait by a: v and w from the GAN's N(0, I) prior drawn from `seed`, u = a's style."""
        z = self.seeded_normal(seed, self.d_content + self.noise_dim)
        content, noise = z[:, : self.d_content], z[:, self.d_content :]
        return {
            **self.generate(content, self.artist_style(artist_id)["style"], noise),
            "content": content,
        }

    def encode_style(self, image):
        return {"style": self.normalised(self.style_encoder(image))}

    def transfer_with_strength(self, image, artist_id, strength, keep_colors):
        """G(u, v(x), 0) with u = u(x) + strength (u(a') - u(x)): 0 redraws x in its own style, 1 is transfer, > 1
        exaggerates what sets a' apart from x."""
        own, target = self.encode_style(image)["style"], self.artist_style(artist_id)["style"]
        style = own + strength[:, None] * (target - own)
        return self.render_pixels(
            image, keep_colors, content=self.encode_content(image)["content_mean"], style=style
        )

    def transfer_by_reference(self, image, reference_images):
        """x's content in the mean style of its R reference images ([B, R, S, S, 3])."""
        flat = tf.reshape(reference_images, tf.concat([[-1], tf.shape(reference_images)[2:]], 0))
        styles = tf.reshape(
            self.encode_style(flat)["style"], [tf.shape(reference_images)[0], -1, self.d_style]
        )
        return self.generate(
            self.encode_content(image)["content_mean"], tf.reduce_mean(styles, axis=1)
        )
