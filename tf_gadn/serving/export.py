"""`python -m tf_gadn.export --model_dir M --export_dir E --name gadn [--version N] [--tflite float16]`: ship a trained
run as a TF Serving SavedModel at `E/<name>/<version>/` (BUILD.md, "Serving").

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
`artists.json` travels as an asset. A method is one ServingModule subclass named by its `Method` record (tf_gadn.training.registry).
"""

from __future__ import annotations

import logging
import os
import re
import secrets
import shutil

import tensorflow as tf

from tf_gadn.data import color as colors
from tf_gadn.data import records
from tf_gadn.serving import image_headers
from tf_gadn.serving.image_headers import (
    MAX_IMAGE_PIXELS,  # one limit: the graph's header check and tf_gadn.serve's
)
from tf_gadn.training import checkpoints, registry

TEMP_PREFIX = (
    ".tmp-"  # hidden, not all-digit: TF Serving and tf_gadn.serve never load it as a version
)
IMAGE, IMAGES, ARTIST = "image", "images", "artist"  # input kinds that have wire variants
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
            tf.lookup.KeyValueTensorInitializer(names, tf.range(len(names), dtype=tf.int32)),
            default_value=-1,
        )
        self.artists_json = tf.saved_model.Asset(os.path.join(model_dir, records.ARTISTS_FILE))

    def functions(self) -> dict:
        raise NotImplementedError

    def phone_tables(self) -> dict:
        """What a phone needs besides generate.tflite to draw any artist: {artists, style_table [A, style_dim],
        content_mean [C], content_cholesky [C, C]} (content ~ mean + L z, z ~ N(0, I)); JSON-ready lists."""
        raise NotImplementedError

    # ---- wire -> model space ----------------------------------------------------------------------------------------
    def _float_images(self, uint8_or_float):
        """[N, H, W, 3] pixels in [0, 255] -> [N, S, S, C] model space (resized only when H, W differ from S)."""
        x = tf.cast(uint8_or_float, tf.float32)
        size = self.image_size
        if x.shape[1] != size or x.shape[2] != size:
            x = tf.cond(
                tf.reduce_all(tf.shape(x)[1:3] == size),
                lambda: x,
                lambda: tf.image.resize(x, [size, size], antialias=True),
            )
        return colors.to_model_space(x / 127.5 - 1.0, self.color)

    def _decode(self, encoded):
        """One PNG/JPEG/BMP/GIF string -> [S, S, 3] pixels. The size its header claims is checked against the pixel
        limit *before* decoding (image_headers.graph_image_size): behind the real TF Serving nothing else stands
        between a decompression bomb and tf.io.decode_image. Unreadable headers, oversized or undecodable images
        raise InvalidArgument."""
        width, height = image_headers.graph_image_size(encoded)
        readable = tf.debugging.Assert(
            width >= 0,
            ["image_bytes: not a PNG, JPEG, GIF or BMP image (or its header is cut short)"],
        )
        with tf.control_dependencies([readable]):
            small = tf.debugging.Assert(
                (width * height <= MAX_IMAGE_PIXELS),
                [
                    "image_bytes: the image header claims",
                    tf.cast(width, tf.int64),
                    "x",
                    tf.cast(height, tf.int64),
                    f"pixels, over the limit of {MAX_IMAGE_PIXELS} pixels",
                ],
            )
        with tf.control_dependencies([small]):
            image = tf.io.decode_image(encoded, channels=3, dtype=tf.uint8, expand_animations=False)
        image = tf.cast(image, tf.float32)[None]
        return tf.image.resize(image, [self.image_size, self.image_size], antialias=True)[0]

    def _images(self, wire, encoded: bool, sets: bool):
        """uint8 [B, (R,) H, W, 3] or bytes [B, (R)] -> model space [B, (R,) S, S, C]."""
        flat = (
            tf.reshape(wire, [-1])
            if encoded
            else tf.reshape(wire, tf.concat([[-1], tf.shape(wire)[-3:]], 0))
        )
        if encoded:
            spec = tf.TensorSpec([self.image_size, self.image_size, 3], tf.float32)
            flat = tf.map_fn(self._decode, flat, fn_output_signature=spec)
        x = self._float_images(flat)
        return tf.reshape(x, tf.concat([tf.shape(wire)[:2], tf.shape(x)[1:]], 0)) if sets else x

    def _artist_ids(self, wire, by_name: bool, checked: bool):
        """Ids checked before any gather: on a GPU an out-of-range gather silently returns zeros."""
        if by_name:
            ids = self.name_to_id.lookup(wire)
            valid = tf.debugging.Assert(
                tf.reduce_all(ids >= 0), ["unknown artist name(s):", tf.boolean_mask(wire, ids < 0)]
            )
        elif checked:
            ids = wire
            valid = tf.debugging.Assert(
                tf.reduce_all((ids >= 0) & (ids < self.num_artists)),
                [f"artist_id out of range [0, {self.num_artists}):", ids],
            )
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
        return tf.map_fn(
            lambda s: tf.random.stateless_normal([dim], tf.stack([s, tf.zeros_like(s)])),
            seed,
            fn_output_signature=tf.TensorSpec([dim], tf.float32),
        )

    def artist_prediction(self, logits):
        """classify outputs from per-artist scores: logits, probabilities, the best artist's id and name."""
        best = tf.argmax(logits, axis=-1, output_type=tf.int32)
        return {
            "logits": logits,
            "probabilities": tf.nn.softmax(logits),
            "artist_id": best,
            "artist": tf.gather(self.artist_names, best),
        }

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
            "transfer_with_strength": (
                self.transfer_with_strength,
                {
                    "image": IMAGE,
                    "artist_id": ARTIST,
                    "strength": tf.TensorSpec([None], tf.float32, "strength"),
                    **amount,
                },
            ),
        }

    def artists(self, row):
        """Every artist name, once per input row (TF Serving's predict needs an input with a batch dimension)."""
        return {"artist": tf.tile(self.artist_names[None], [tf.shape(row)[0], 1])}

    def render(self, image, keep_colors, **codes):
        """PNG only: on TF Serving's REST API a uint8 image output travels as a JSON list of numbers (json.dumps of
        one 256 px image took 0.6 s on this CPU), a PNG as one base64 string."""
        pixels = self.to_uint8(
            self.keep_colors(self.generate(**codes)["image"], image, keep_colors)
        )
        return {
            "png_bytes": tf.map_fn(
                tf.io.encode_png, pixels, fn_output_signature=tf.TensorSpec([], tf.string)
            )
        }

    def render_pixels(self, image, keep_colors, **codes):
        return {"image": self.keep_colors(self.generate(**codes)["image"], image, keep_colors)}

    def keep_colors(self, output, image, amount):
        """Luminance-only transfer (Gatys et al., discussed in GADN's appendix): L from `output`, a and b from
        `image`, both model space [B, S, S, C]; amount [B] blends 0 (output's colours) ... 1 (image's colours)."""
        to_lab = (
            (lambda x: x) if self.color == "lab" else (lambda x: colors.to_model_space(x, "lab"))
        )
        out, src = to_lab(output), to_lab(image)
        amount = tf.reshape(amount, [-1, 1, 1, 1])
        lab = tf.concat(
            [out[..., :1], out[..., 1:] + amount * (src[..., 1:] - out[..., 1:])], axis=-1
        )
        return lab if self.color == "lab" else colors.to_rgb_m11(lab, "lab")

    # ---- signatures -------------------------------------------------------------------------------------------------
    def wire_function(
        self, core, kinds: dict, encoded=False, by_name=False, checked=True, batch=None
    ):
        """A tf.function with one named TensorSpec per wire input, wrapping `core`; `batch` fixes the batch size
        and the image size (TFLite), else both stay dynamic."""
        side = None if batch is None else self.image_size
        wire_specs = {
            IMAGE: tf.TensorSpec([batch], tf.string, "image_bytes")
            if encoded
            else tf.TensorSpec([batch, side, side, 3], tf.uint8, "image"),
            IMAGES: tf.TensorSpec([batch, None], tf.string, "reference_images_bytes")
            if encoded
            else tf.TensorSpec([batch, None, side, side, 3], tf.uint8, "reference_images"),
            ARTIST: tf.TensorSpec([batch], tf.string, "artist")
            if by_name
            else tf.TensorSpec([batch], tf.int32, "artist_id"),
        }
        specs = [
            wire_specs[k]
            if isinstance(k, str)
            else tf.TensorSpec([batch, *k.shape[1:]], k.dtype, k.name)
            for k in kinds.values()
        ]

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
                    outputs["png_bytes"] = tf.map_fn(
                        tf.io.encode_png,
                        outputs["image"],
                        fn_output_signature=tf.TensorSpec([], tf.string),
                    )
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
                    sigs[key] = self.wire_function(
                        core, kinds, encoded, by_name
                    ).get_concrete_function()
        sigs["serving_default"] = sigs[DEFAULT_SIGNATURE]
        return sigs

    def tflite_function(self, name: str):
        """`name` for a phone: one uint8 image already at S x S (no resize op), no Assert ops (TFLite has none).
        Batch 1 because the generator's nearest-neighbour upsampling (tf.repeat) loses the static height under a
        dynamic batch, and TFLite's builtin conv_2d then refuses it."""
        core, kinds = self.functions()[name]
        return self.wire_function(core, kinds, checked=False, batch=1).get_concrete_function()


def signatures_for(config, artists, networks, model_dir) -> ServingModule:
    """The serving module of a trained run: its method's (tf_gadn.training.registry)."""
    return registry.method(config.method).serving_module(config, artists, networks, model_dir)


def next_version(base_path: str) -> int:
    versions = (
        [int(d) for d in os.listdir(base_path) if re.fullmatch(r"\d+", d)]
        if os.path.isdir(base_path)
        else []
    )
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
        logging.warning(
            "removed %s, left by an export that did not finish", os.path.join(base_path, name)
        )
        removed.append(name)
    return removed


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


def export(
    model_dir: str, export_dir: str, name: str = "", version: int = 0, tflite_modes=()
) -> str:
    """Writes E/<name>/<version>/ (version 0 = next free) atomically: saved into a hidden temp dir (TF Serving only
    loads all-digit names) and renamed into place once complete, so a polling server never sees half a model.
    Folders are created under the process umask (0755 with the usual 022, not tempfile's 0700), so a server running
    as another user can read them; temp folders of killed exports are removed first."""
    from tf_gadn.serving import batching, tflite, warmup

    unknown = set(tflite_modes) - set(tflite.MODES)
    if unknown:
        raise ValueError(
            f"unknown --tflite mode(s) {sorted(unknown)}; known: {', '.join(tflite.MODES)}"
        )
    base = os.path.join(export_dir, name or checkpoints.load_run_info(model_dir)[0].method)
    version = version or next_version(base)
    final = os.path.join(base, str(version))
    if os.path.exists(final):
        raise FileExistsError(
            f"{final!r} exists: versions are immutable once served, pick another --version"
        )
    config, artists, networks = checkpoints.load_trained(model_dir)
    module = signatures_for(config, artists, networks, model_dir)
    os.makedirs(base, exist_ok=True)
    remove_stale_temps(base)
    tmp = os.path.join(base, f"{TEMP_PREFIX}{version}-{os.getpid()}-{secrets.token_hex(4)}")
    os.mkdir(tmp)
    try:
        tf.saved_model.save(module, tmp, signatures=module.signatures())
        # per-model batching parameters (tensorflow_model_server --enable_per_model_batching_parameters) and the
        # warm-up requests it replays at load, one per main signature and transfer at every allowed batch size
        with open(os.path.join(tmp, batching.PER_MODEL_FILE), "w", encoding="utf-8") as f:
            f.write(batching.batching_params_text(batching.SHIPPED))
        warmup.write(
            tmp,
            warmup.example_requests(
                module, os.path.basename(base), batching.SHIPPED.allowed_batch_sizes
            ),
        )
        if tflite_modes:
            tflite.convert(module, os.path.join(tmp, "tflite"), tflite_modes, artists)
        os.rename(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return final
