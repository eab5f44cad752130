"""`python -m tf_gadn.export --model_dir M --export_dir E --name gadn [--version N] [--tflite float16]`: ship a trained
run as a TF Serving SavedModel at `E/<name>/<version>/` (DESIGN.md "Export and serving").

A method contributes only its *core* functions on model-space float images (GADN Section 3: transfer(x, a') =
G(E(x).mean, S(a').mean); style space: G(u(a'), v(x), 0), plus encode_style and transfer_by_reference);
`ServingModule` wraps each core into its wire variants, every one a named signature with a dynamic batch dimension:

  <name>             images as uint8 [B, H, W, 3] (any H, W: resized inside the graph), artists as int32 `artist_id`
  <name>_by_name     artists as string `artist` names, looked up in a StaticHashTable built from artists.json
  <name>_encoded     images as PNG/JPEG/BMP/GIF bytes `image_bytes` [B], decoded inside the graph; outputs add
                     `png_bytes` (TF Serving's REST API sends `*_bytes` tensors as base64)
  <name>_encoded_by_name   both

`serving_default` is `transfer`. Bad input fails inside the graph with InvalidArgumentError (artist id out of range,
unknown name, undecodable or oversized image), which TF Serving and tf_gadn.serve report as INVALID_ARGUMENT.
`artists.json` travels as an asset. A method is one ServingModule subclass plus one line in `signatures_for`.
"""
from __future__ import annotations

import logging
import os
import re
import secrets
import shutil
import sys

import numpy as np
import tensorflow as tf
from absl import app, flags

from tf_gadn.training import checkpoints
from tf_gadn.data import color as colors
from tf_gadn.data import records
from tf_gadn.serving.image_headers import MAX_IMAGE_PIXELS   # tf_gadn.serve refuses larger headers before decoding

TEMP_PREFIX = ".tmp-"   # hidden, not all-digit: TF Serving and tf_gadn.serve never load it as a version
IMAGE, IMAGES, ARTIST = "image", "images", "artist"   # input kinds that have wire variants
DEFAULT_SIGNATURE = "transfer"


class ServingModule(tf.Module):
    """The method-independent half of an export: wire formats around a method's core functions.

    Subclasses set `color` and implement `functions()`: {name: (core, {arg: IMAGE | IMAGES | ARTIST | TensorSpec})}.
    A core takes model-space float images [B, S, S, C] (IMAGES: [B, R, S, S, C]) and int32 artist ids, and returns a
    dict of tensors; an `image` output in model space leaves as uint8 RGB.
    """
    color = "rgb"

    def __init__(self, config, artists: list[dict], model_dir: str):
        super().__init__()
        self.image_size = config.image_size
        self.num_artists = len(artists)
        names = [a["name"] for a in artists]
        self.artist_names = tf.constant(names, tf.string)
        self.name_to_id = tf.lookup.StaticHashTable(
            tf.lookup.KeyValueTensorInitializer(names, tf.range(len(names), dtype=tf.int32)), default_value=-1)
        self.artists_json = tf.saved_model.Asset(os.path.join(model_dir, records.ARTISTS_FILE))

    def functions(self) -> dict:
        raise NotImplementedError

    # ---- wire -> model space ----------------------------------------------------------------------------------------
    def _float_images(self, uint8_or_float):
        """[N, H, W, 3] pixels in [0, 255] -> [N, S, S, C] model space (resized only when H, W differ from S)."""
        x = tf.cast(uint8_or_float, tf.float32)
        size = self.image_size
        if x.shape[1] != size or x.shape[2] != size:
            x = tf.cond(tf.reduce_all(tf.shape(x)[1:3] == size), lambda: x,
                        lambda: tf.image.resize(x, [size, size], antialias=True))
        return colors.to_model_space(x / 127.5 - 1.0, self.color)

    def _decode(self, encoded):
        """One PNG/JPEG/BMP/GIF string -> [S, S, 3] pixels; undecodable or oversized bytes raise InvalidArgument
        (a backstop for servers that do not read headers first, as tf_gadn.serve does)."""
        image = tf.io.decode_image(encoded, channels=3, dtype=tf.uint8, expand_animations=False)
        pixels = tf.reduce_prod(tf.cast(tf.shape(image)[:2], tf.int64))
        small = tf.debugging.assert_less_equal(pixels, tf.constant(MAX_IMAGE_PIXELS, tf.int64),
                                               message=f"decoded image larger than {MAX_IMAGE_PIXELS} pixels")
        with tf.control_dependencies([small]):
            image = tf.cast(image, tf.float32)[None]
        return tf.image.resize(image, [self.image_size, self.image_size], antialias=True)[0]

    def _images(self, wire, encoded: bool, sets: bool):
        """uint8 [B, (R,) H, W, 3] or bytes [B, (R)] -> model space [B, (R,) S, S, C]."""
        flat = tf.reshape(wire, [-1]) if encoded else tf.reshape(wire, tf.concat([[-1], tf.shape(wire)[-3:]], 0))
        if encoded:
            spec = tf.TensorSpec([self.image_size, self.image_size, 3], tf.float32)
            flat = tf.map_fn(self._decode, flat, fn_output_signature=spec)
        x = self._float_images(flat)
        return tf.reshape(x, tf.concat([tf.shape(wire)[:2], tf.shape(x)[1:]], 0)) if sets else x

    def _artist_ids(self, wire, by_name: bool, checked: bool):
        """Ids checked before any gather: on a GPU an out-of-range gather silently returns zeros."""
        if by_name:
            ids = self.name_to_id.lookup(wire)
            valid = tf.debugging.Assert(tf.reduce_all(ids >= 0),
                                        ["unknown artist name(s):", tf.boolean_mask(wire, ids < 0)])
        elif checked:
            ids = wire
            valid = tf.debugging.Assert(tf.reduce_all((ids >= 0) & (ids < self.num_artists)),
                                        [f"artist_id out of range [0, {self.num_artists}):", ids])
        else:
            return wire
        with tf.control_dependencies([valid]):
            return tf.identity(ids)

    # ---- model space -> wire ----------------------------------------------------------------------------------------
    def to_uint8(self, image):
        rgb = colors.to_rgb_m11(image, self.color)
        return tf.cast(tf.clip_by_value(tf.round((rgb + 1.0) * 127.5), 0.0, 255.0), tf.uint8)

    @staticmethod
    def seeded_normal(seed, dim: int):
        """[B, dim] standard normal rows, row i a function of seed[i] alone (same seed, same draw, any batch)."""
        return tf.map_fn(lambda s: tf.random.stateless_normal([dim], tf.stack([s, tf.zeros_like(s)])), seed,
                         fn_output_signature=tf.TensorSpec([dim], tf.float32))

    def artist_prediction(self, logits):
        """classify outputs from per-artist scores: logits, probabilities, the best artist's id and name."""
        best = tf.argmax(logits, axis=-1, output_type=tf.int32)
        return {"logits": logits, "probabilities": tf.nn.softmax(logits),
                "artist_id": best, "artist": tf.gather(self.artist_names, best)}

    # ---- the explorer's signatures (issue 16), shared by every method --------------------------------------------------
    def explorer_functions(self, code_specs: dict) -> dict:
        """`artists` (every artist name, so a page on the REST API alone can list them), `artist_style`, `render`
        (a PNG generated from explicit codes, keeping the content image's colours by `keep_colors`) and
        `transfer_with_strength`. `code_specs` are the method's generator inputs {arg: TensorSpec}."""
        amount = {"keep_colors": tf.TensorSpec([None], tf.float32, "keep_colors")}
        return {
            "artists": (self.artists, {"row": tf.TensorSpec([None], tf.int32, "row")}),
            "artist_style": (self.artist_style, {"artist_id": ARTIST}),
            "render": (self.render, {**code_specs, "image": IMAGE, **amount}),
            "transfer_with_strength": (self.transfer_with_strength, {
                "image": IMAGE, "artist_id": ARTIST, "strength": tf.TensorSpec([None], tf.float32, "strength"),
                **amount}),
        }

    def artists(self, row):
        """Every artist name, once per input row (TF Serving's predict needs an input with a batch dimension)."""
        return {"artist": tf.tile(self.artist_names[None], [tf.shape(row)[0], 1])}

    def render(self, image, keep_colors, **codes):
        """PNG only: on TF Serving's REST API a uint8 image output travels as a JSON list of numbers (json.dumps of
        one 256 px image took 0.6 s on this CPU), a PNG as one base64 string."""
        pixels = self.to_uint8(self.keep_colors(self.generate(**codes)["image"], image, keep_colors))
        return {"png_bytes": tf.map_fn(tf.io.encode_png, pixels, fn_output_signature=tf.TensorSpec([], tf.string))}

    def render_pixels(self, image, keep_colors, **codes):
        return {"image": self.keep_colors(self.generate(**codes)["image"], image, keep_colors)}

    def keep_colors(self, output, image, amount):
        """Luminance-only transfer (Gatys et al., discussed in GADN's appendix): L from `output`, a and b from
        `image`, both model space [B, S, S, C]; amount [B] blends 0 (output's colours) ... 1 (image's colours)."""
        to_lab = (lambda x: x) if self.color == "lab" else (lambda x: colors.to_model_space(x, "lab"))
        out, src = to_lab(output), to_lab(image)
        amount = tf.reshape(amount, [-1, 1, 1, 1])
        lab = tf.concat([out[..., :1], out[..., 1:] + amount * (src[..., 1:] - out[..., 1:])], axis=-1)
        return lab if self.color == "lab" else colors.to_rgb_m11(lab, "lab")

    # ---- signatures -------------------------------------------------------------------------------------------------
    def wire_function(self, core, kinds: dict, encoded=False, by_name=False, checked=True, batch=None):
        """A tf.function with one named TensorSpec per wire input, wrapping `core`; `batch` fixes the batch size
        and the image size (TFLite), else both stay dynamic."""
        side = None if batch is None else self.image_size
        wire_specs = {
            IMAGE: tf.TensorSpec([batch], tf.string, "image_bytes") if encoded
            else tf.TensorSpec([batch, side, side, 3], tf.uint8, "image"),
            IMAGES: tf.TensorSpec([batch, None], tf.string, "reference_images_bytes") if encoded
            else tf.TensorSpec([batch, None, side, side, 3], tf.uint8, "reference_images"),
            ARTIST: tf.TensorSpec([batch], tf.string, "artist") if by_name else tf.TensorSpec([batch], tf.int32,
                                                                                              "artist_id"),
        }
        specs = [wire_specs[k] if isinstance(k, str) else tf.TensorSpec([batch, *k.shape[1:]], k.dtype, k.name)
                 for k in kinds.values()]

        def serve(*wire):
            args = {}
            for (arg, kind), value in zip(kinds.items(), wire):
                if kind in (IMAGE, IMAGES):
                    value = self._images(value, encoded, sets=kind == IMAGES)
                elif kind == ARTIST:
                    value = self._artist_ids(value, by_name, checked)
                args[arg] = value
            outputs = dict(core(**args))
            if "image" in outputs:
                outputs["image"] = self.to_uint8(outputs["image"])
                if encoded:
                    outputs["png_bytes"] = tf.map_fn(tf.io.encode_png, outputs["image"],
                                                     fn_output_signature=tf.TensorSpec([], tf.string))
            return outputs

        return tf.function(serve, input_signature=specs)

    def signatures(self) -> dict:
        """Every signature by name (concrete functions), `serving_default` = transfer."""
        sigs = {}
        for name, (core, kinds) in self.functions().items():
            has_image = any(k in (IMAGE, IMAGES) for k in kinds.values())
            for encoded in (False, True) if has_image else (False,):
                for by_name in (False, True) if ARTIST in kinds.values() else (False,):
                    key = name + ("_encoded" if encoded else "") + ("_by_name" if by_name else "")
                    sigs[key] = self.wire_function(core, kinds, encoded, by_name).get_concrete_function()
        sigs["serving_default"] = sigs[DEFAULT_SIGNATURE]
        return sigs

    def tflite_function(self, name: str):
        """`name` for a phone: one uint8 image already at S x S (no resize op), no Assert ops (TFLite has none).
        Batch 1 because the generator's nearest-neighbour upsampling (tf.repeat) loses the static height under a
        dynamic batch, and TFLite's builtin conv_2d then refuses it."""
        core, kinds = self.functions()[name]
        return self.wire_function(core, kinds, checked=False, batch=1).get_concrete_function()


class GadnServing(ServingModule):
    """GADN (Sections 3-4): content E(x), per-artist style table S(a), generator G, adversarial classifier C2."""

    def __init__(self, config, artists, networks, model_dir):
        from tf_gadn.gadn.stage1 import load_content_stats
        super().__init__(config, artists, model_dir)
        self.encoder, self.generator = networks["encoder"], networks["generator"]
        self.style_table = networks["style_table"]
        self.classifier = networks.get("classifier2", networks.get("classifier1"))
        stats = load_content_stats(model_dir)
        cov = stats["cov"] + 1e-6 * np.eye(len(stats["mean"]))
        # content codes are drawn from the full-covariance normal fitted to E(x) (Appendix B.2, Table 3)
        self.content_mean = tf.constant(stats["mean"], tf.float32)
        self.content_chol = tf.constant(np.linalg.cholesky(cov), tf.float32)
        self.content_dim, self.style_dim = config.content_dim, config.style_dim

    def functions(self):
        table = {
            "transfer": (self.transfer, {"image": IMAGE, "artist_id": ARTIST}),
            "generate": (self.generate, {"content": tf.TensorSpec([None, self.content_dim], tf.float32, "content"),
                                         "style": tf.TensorSpec([None, self.style_dim], tf.float32, "style")}),
            "encode_content": (self.encode_content, {"image": IMAGE}),
            "sample": (self.sample, {"artist_id": ARTIST, "seed": tf.TensorSpec([None], tf.int64, "seed")}),
        }
        if self.classifier is not None:
            table["classify"] = (self.classify, {"image": IMAGE})
        table.update(self.explorer_functions({"content": table["generate"][1]["content"],
                                              "style": table["generate"][1]["style"]}))
        table["transfer_with_strength"][1]["source_artist_id"] = tf.TensorSpec([None], tf.int32, "source_artist_id")
        return table

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
        z = self.seeded_normal(seed, self.content_dim)
        content = self.content_mean + tf.matmul(z, self.content_chol, transpose_b=True)
        return {**self.generate(content, self.style_table(artist_id)[0]), "content": content}


class StyleSpaceServing(ServingModule):
    """Style space (that paper's Sections 4-5.2), in Lab: G([u, v, w]) with u a normalised style (an image's
    S(x)[:d_style], or an artist's representative style s_a), v = Enc(x).mean[:d_content], w the noise (0 unless
    sampling). Adds encode_style and transfer_by_reference: styles from reference images, so artists never seen in
    training work too."""
    color = "lab"

    def __init__(self, config, artists, networks, model_dir):
        from tf_gadn.style_space.common import load_style_stats
        super().__init__(config, artists, model_dir)
        missing = [n for n in ("style_encoder", "content_encoder", "generator", "representative_styles")
                   if n not in networks]
        if missing:
            raise FileNotFoundError(f"{model_dir!r} has no trained {', '.join(missing)}: train the whole chain first")
        self.style_encoder, self.content_encoder = networks["style_encoder"], networks["content_encoder"]
        self.generator, self.representative_styles = networks["generator"], networks["representative_styles"]
        mean, std = load_style_stats(model_dir, config.d_style)
        self.style_mean, self.style_std = tf.constant(mean), tf.constant(std)
        self.d_style, self.d_content = config.d_style, config.d_content
        self.noise_dim = config.gan_code_dim - config.d_style - config.d_content

    def functions(self):
        return {
            "transfer": (self.transfer, {"image": IMAGE, "artist_id": ARTIST}),
            "generate": (self.generate, {"content": tf.TensorSpec([None, self.d_content], tf.float32, "content"),
                                         "style": tf.TensorSpec([None, self.d_style], tf.float32, "style")}),
            "encode_content": (self.encode_content, {"image": IMAGE}),
            "classify": (self.classify, {"image": IMAGE}),
            "sample": (self.sample, {"artist_id": ARTIST, "seed": tf.TensorSpec([None], tf.int64, "seed")}),
            "encode_style": (self.encode_style, {"image": IMAGE}),
            "transfer_by_reference": (self.transfer_by_reference, {"image": IMAGE, "reference_images": IMAGES}),
            **self.explorer_functions({
                "content": tf.TensorSpec([None, self.d_content], tf.float32, "content"),
                "style": tf.TensorSpec([None, self.d_style], tf.float32, "style"),
                "noise": tf.TensorSpec([None, self.noise_dim], tf.float32, "noise")}),
        }

    def normalised(self, style_code):
        from tf_gadn.style_space.common import normalise_style
        return normalise_style(style_code[:, :self.d_style], self.style_mean, self.style_std)

    def artist_style(self, artist_id):
        return {"style": self.normalised(self.representative_styles(artist_id))}

    def generate(self, content, style, noise=None):
        """G(u, v, w); w = 0, the mode of the noise prior, unless given."""
        noise = tf.zeros([tf.shape(content)[0], self.noise_dim]) if noise is None else noise
        return {"image": self.generator([style, content, noise])}

    def encode_content(self, image):
        mean, std = self.content_encoder(image)
        return {"content_mean": mean[:, :self.d_content], "content_std": std[:, :self.d_content]}

    def transfer(self, image, artist_id):
        return self.generate(self.encode_content(image)["content_mean"], self.artist_style(artist_id)["style"])

    def classify(self, image):
        """Section 6.1's rule: the artist whose representative style is nearest to S(x)."""
        code = self.style_encoder(image)
        styles = self.representative_styles.styles
        return self.artist_prediction(-tf.reduce_sum(tf.square(code[:, None, :] - styles[None, :, :]), axis=-1))

    def sample(self, artist_id, seed):
        """A new portrait by a: v and w from the GAN's N(0, I) prior drawn from `seed`, u = a's style."""
        z = self.seeded_normal(seed, self.d_content + self.noise_dim)
        content, noise = z[:, :self.d_content], z[:, self.d_content:]
        return {**self.generate(content, self.artist_style(artist_id)["style"], noise), "content": content}

    def encode_style(self, image):
        return {"style": self.normalised(self.style_encoder(image))}

    def transfer_with_strength(self, image, artist_id, strength, keep_colors):
        """G(u, v(x), 0) with u = u(x) + strength (u(a') - u(x)): 0 redraws x in its own style, 1 is transfer, > 1
        exaggerates what sets a' apart from x."""
        own, target = self.encode_style(image)["style"], self.artist_style(artist_id)["style"]
        style = own + strength[:, None] * (target - own)
        return self.render_pixels(image, keep_colors, content=self.encode_content(image)["content_mean"],
                                  style=style)

    def transfer_by_reference(self, image, reference_images):
        """x's content in the mean style of its R reference images ([B, R, S, S, 3])."""
        flat = tf.reshape(reference_images, tf.concat([[-1], tf.shape(reference_images)[2:]], 0))
        styles = tf.reshape(self.encode_style(flat)["style"], [tf.shape(reference_images)[0], -1, self.d_style])
        return self.generate(self.encode_content(image)["content_mean"], tf.reduce_mean(styles, axis=1))


def signatures_for(config, artists, networks, model_dir) -> ServingModule:
    """The serving module of a trained run, by config.method."""
    if config.method == "gadn":
        return GadnServing(config, artists, networks, model_dir)
    if config.method == "style_space":
        return StyleSpaceServing(config, artists, networks, model_dir)
    raise ValueError(f"unknown method {config.method!r}")


def next_version(base_path: str) -> int:
    versions = [int(d) for d in os.listdir(base_path) if re.fullmatch(r"\d+", d)] if os.path.isdir(base_path) else []
    return max(versions, default=0) + 1


def remove_stale_temps(base_path: str) -> list[str]:
    """Removes the temp folders of exports that were killed: `.tmp-<version>-<pid>-<token>` whose process is gone
    (or names without a pid, from older exports). A live export's folder stays, so two exports may run side by side
    on one machine. Not done by the server: it may run as another user, in another pid namespace (Docker)."""
    removed = []
    for name in sorted(os.listdir(base_path)) if os.path.isdir(base_path) else []:
        if not name.startswith(TEMP_PREFIX):
            continue
        match = re.fullmatch(re.escape(TEMP_PREFIX) + r"\d+-(\d+)-\w+", name)
        if match and _process_alive(int(match.group(1))):
            continue
        shutil.rmtree(os.path.join(base_path, name), ignore_errors=True)
        logging.warning("removed %s, left by an export that did not finish", os.path.join(base_path, name))
        removed.append(name)
    return removed


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:   # another user's process
        return True
    return True


def export(model_dir: str, export_dir: str, name: str = "", version: int = 0, tflite_modes=()) -> str:
    """Writes E/<name>/<version>/ (version 0 = next free) atomically: saved into a hidden temp dir (TF Serving only
    loads all-digit names) and renamed into place once complete, so a polling server never sees half a model.
    Folders are created under the process umask (0755 with the usual 022, not tempfile's 0700), so a server running
    as another user can read them; temp folders of killed exports are removed first."""
    from tf_gadn.serving import tflite
    unknown = set(tflite_modes) - set(tflite.MODES)
    if unknown:
        raise ValueError(f"unknown --tflite mode(s) {sorted(unknown)}; known: {', '.join(tflite.MODES)}")
    base = os.path.join(export_dir, name or checkpoints.load_run_info(model_dir)[0].method)
    version = version or next_version(base)
    final = os.path.join(base, str(version))
    if os.path.exists(final):
        raise FileExistsError(f"{final!r} exists: versions are immutable once served, pick another --version")
    config, artists, networks = checkpoints.load_trained(model_dir)
    module = signatures_for(config, artists, networks, model_dir)
    os.makedirs(base, exist_ok=True)
    remove_stale_temps(base)
    tmp = os.path.join(base, f"{TEMP_PREFIX}{version}-{os.getpid()}-{secrets.token_hex(4)}")
    os.mkdir(tmp)
    try:
        tf.saved_model.save(module, tmp, signatures=module.signatures())
        if tflite_modes:
            tflite.convert(module, os.path.join(tmp, "tflite"), tflite_modes, artists)
        os.rename(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return final


FLAGS = flags.FLAGS


def define_flags():
    """CLI flags, defined only when run as a program (the library modules import side by side)."""
    flags.DEFINE_string("model_dir", None, "Trained run (any method) to export.")
    flags.DEFINE_string("export_dir", None, "Root of the model base paths: writes EXPORT_DIR/NAME/VERSION/.")
    flags.DEFINE_string("name", "", "Model name (default: the run's method).")
    flags.DEFINE_integer("version", 0, "Version number (0: one more than the largest present).")
    flags.DEFINE_list("tflite", [], "Also convert transfer and generate to TFLite: float32, float16, dynamic_int8.")


def main(argv):
    del argv
    from tf_gadn.training.checkpoints import CheckpointError
    try:
        print(export(FLAGS.model_dir, FLAGS.export_dir, FLAGS.name, FLAGS.version, FLAGS.tflite))
    except (CheckpointError, FileNotFoundError) as err:  # a run with no usable checkpoint: say so, no traceback
        print(f"error: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    define_flags()
    flags.mark_flags_as_required(["model_dir", "export_dir"])
    app.run(main)
