"""StarGAN's serving module (BUILD.md, "Serving"): its core functions on model-space images, which
`tf_gadn.serving.export.ServingModule` wraps into every wire signature (transfer, transfer_by_name, ...)."""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from tf_gadn.serving.export import ARTIST, IMAGE, ServingModule


class StarGanServing(ServingModule):
    """StarGAN (Choi et al. 2018, Section 3): G(x, c) with c the target artist's label, D_cls as the classifier.

    StarGAN's "codes" are the input image itself and the label: `generate` takes both (a label may blend artists),
    and there is no `sample`, because StarGAN has no distribution of contents to draw from."""

    def __init__(self, config, artists, networks, model_dir):
        super().__init__(config, artists, model_dir)
        if "generator" not in networks:
            raise FileNotFoundError(f"{model_dir!r} has no trained StarGAN generator")
        self.generator = networks["generator"]
        self.discriminator = networks.get("discriminator")

    def functions(self):
        codes = {
            "content": tf.TensorSpec(
                [None, self.image_size, self.image_size, 3], tf.float32, "content"
            ),
            "style": tf.TensorSpec([None, self.num_artists], tf.float32, "style"),
        }
        table = {
            "transfer": (self.transfer, {"image": IMAGE, "artist_id": ARTIST}),
            "generate": (self.generate, codes),
        }
        if self.discriminator is not None:
            table["classify"] = (self.classify, {"image": IMAGE})
        table.update(self.explorer_functions(codes))
        table["transfer_with_strength"][1]["source_artist_id"] = tf.TensorSpec(
            [None], tf.int32, "source_artist_id"
        )
        return table

    def phone_tables(self):
        """The labels are the styles: one-hot rows. No content statistics (StarGAN cannot sample)."""
        return {
            "artists": [n.decode() for n in self.artist_names.numpy()],
            "style_table": np.eye(self.num_artists, dtype=np.float32).tolist(),
        }

    def label(self, artist_id):
        return tf.one_hot(artist_id, self.num_artists)

    def transfer(self, image, artist_id):
        """x drawn by artist a': G(x, one-hot(a'))."""
        return self.generate(image, self.label(artist_id))

    def generate(self, content, style):
        return {"image": self.generator([content, style])}

    def classify(self, image):
        return self.artist_prediction(self.discriminator(image)[1])

    def artist_style(self, artist_id):
        return {"style": self.label(artist_id)}

    def transfer_with_strength(self, image, artist_id, strength, keep_colors, source_artist_id):
        """G(x, c + strength (c' - c)) with c the source's label: StarGAN's labels interpolate like GADN's styles
        (0 redraws x as its own artist, 1 is transfer, > 1 extrapolates past a')."""
        source = self._artist_ids(source_artist_id, by_name=False, checked=True)
        own, target = self.label(source), self.label(artist_id)
        style = own + strength[:, None] * (target - own)
        return self.render_pixels(image, keep_colors, content=image, style=style)
