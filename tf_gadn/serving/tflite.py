"""TFLite previews for phones (BUILD.md, "Serving"): `transfer` and `generate` converted from the same
functions the SavedModel serves, in three modes, plus a metadata JSON a mobile app reads (signature key, inputs and
outputs in the interpreter's own order, artists) and `phone_tables.json`, the style table and content statistics that
let an app drive `generate` (and so `sample`: content drawn from the statistics, style from the table) on the phone.

Each file's one signature is keyed by its function's name (`transfer`, `generate`), so an app calls
`interpreter.get_signature_runner("transfer")` and feeds inputs by name; the interpreter lists inputs sorted by name
(`artist_id` before `image`), and the JSON records them in that order, as the interpreter reports them.

Modes: `float32` (no optimisation), `float16` (weights stored as float16, dequantised at load), `dynamic_int8`
(dynamic-range quantisation: int8 weights, activations quantised on the fly; no representative data set needed).
The phone versions take uint8 images already at the model size and skip the Assert ops of the served signatures
(TFLite has none; its Gather rejects an out-of-range artist id by itself). `TOLERANCE` is the parity each mode keeps
against the SavedModel, in uint8 levels of the output image; tests/test_tflite.py checks it.
"""

from __future__ import annotations

import os
import tempfile

import numpy as np
import tensorflow as tf

from tf_gadn.data import records

SIGNATURES = ("transfer", "generate")
MODES = ("float32", "float16", "dynamic_int8")
# |tflite - SavedModel| over output pixels in uint8 levels (of 255): largest, 99th percentile, mean. float32 differs
# only by op order (a rounding flip of one level); float16 weights move a few pixels by a few levels; int8 weights
# move every pixel a little and a few isolated ones a lot (61 levels seen at 256 px), so that mode has no bound on the
# largest error, only on p99 and mean. Measured: tiny test model and a 256 px demo trunk (BUILD.md).
TOLERANCE = {
    "float32": {"max": 1, "p99": 1, "mean": 0.01},
    "float16": {"max": 4, "p99": 2, "mean": 0.25},
    "dynamic_int8": {"max": None, "p99": 32, "mean": 4.0},
}


def _saved_function(concrete, key: str, directory: str) -> str:
    """A SavedModel holding only `concrete` under signature `key` (its variables, no name table: that would need TF
    Select ops), so the .tflite file's signature is named after the function, not "serving_default"."""
    holder = tf.Module()
    holder.variables_used = list(concrete.variables)
    path = os.path.join(directory, key)
    tf.saved_model.save(holder, path, signatures={key: concrete})
    return path


def _converter(saved_path: str, key: str, mode: str) -> tf.lite.TFLiteConverter:
    if mode not in MODES:
        raise ValueError(f"tflite mode must be one of {MODES}, got {mode!r}")
    converter = tf.lite.TFLiteConverter.from_saved_model(saved_path, signature_keys=[key])
    if mode != "float32":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    if mode == "float16":
        converter.target_spec.supported_types = [tf.float16]
    return converter


def interpreter_signature(path: str) -> dict:
    """{signature_key, inputs, outputs} of a .tflite file as the interpreter reports them: inputs and outputs in its
    order, each with name, dtype and shape."""
    runner_interpreter = interpreter(path)
    ((key, names),) = runner_interpreter.get_signature_list().items()
    runner = runner_interpreter.get_signature_runner(key)

    def described(details, order):
        return [
            {
                "name": name,
                "dtype": np.dtype(details[name]["dtype"]).name,
                "shape": [int(d) for d in details[name]["shape"]],
            }
            for name in order
        ]

    return {
        "signature_key": key,
        "inputs": described(runner.get_input_details(), names["inputs"]),
        "outputs": described(runner.get_output_details(), names["outputs"]),
    }


def file_name(signature: str, mode: str) -> str:
    return f"{signature}.{mode}.tflite"


TABLES_FILE = "phone_tables.json"


def convert(module, out_dir: str, modes, artists: list[dict]) -> list[str]:
    """Writes OUT_DIR/<signature>.<mode>.tflite for transfer and generate, OUT_DIR/<mode>.json for each mode, and
    OUT_DIR/phone_tables.json; returns the JSON paths of the modes. Each function is traced once for all modes."""
    os.makedirs(out_dir, exist_ok=True)
    records.write_json(os.path.join(out_dir, TABLES_FILE), module.phone_tables())
    meta_paths = []
    with tempfile.TemporaryDirectory() as work:
        saved = {
            name: _saved_function(module.tflite_function(name), name, work) for name in SIGNATURES
        }
        for mode in modes:
            meta = {
                "mode": mode,
                "image_size": module.image_size,
                "color_in_model": module.color,
                "image_format": "uint8 RGB [1, size, size, 3] in and out",
                "tables": TABLES_FILE,
                "artists": [a["name"] for a in artists],
                "tolerance_uint8_levels": TOLERANCE[mode],
                "signatures": {},
            }
            for name, saved_path in saved.items():
                path = os.path.join(out_dir, file_name(name, mode))
                with records.atomic_file(path) as tmp, open(tmp, "wb") as f:
                    f.write(_converter(saved_path, name, mode).convert())
                meta["signatures"][name] = {
                    "file": os.path.basename(path),
                    "bytes": os.path.getsize(path),
                    **interpreter_signature(path),
                }
            meta_paths.append(os.path.join(out_dir, f"{mode}.json"))
            records.write_json(meta_paths[-1], meta)
    return meta_paths


def sample_on_phone(generate_file: str, tables: dict, artist: str, seed: int) -> np.ndarray:
    """What an app does for `sample` with only generate.tflite and phone_tables.json (written here in numpy, a
    phone's few lines of Kotlin/Swift): content = mean + L z with z ~ N(0, I) from the seed (GADN's fitted normal;
    the style space's N(0, I) prior has mean 0 and L = I), style = the artist's row of the style table."""
    z = np.random.default_rng(seed).standard_normal(len(tables["content_mean"])).astype(np.float32)
    content = (
        np.asarray(tables["content_mean"], np.float32)
        + np.asarray(tables["content_cholesky"], np.float32) @ z
    )
    style = np.asarray(tables["style_table"][tables["artists"].index(artist)], np.float32)
    runner = interpreter(generate_file).get_signature_runner("generate")
    return runner(content=content[None], style=style[None])["image"][0]


def interpreter(path: str):
    """The LiteRT interpreter (ai-edge-litert); tf.lite.Interpreter only where LiteRT is not installed."""
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError:
        Interpreter = tf.lite.Interpreter
    return Interpreter(model_path=path)


class Runner:
    """Calls a converted signature (batch 1) on numpy inputs of any batch size, one example at a time."""

    def __init__(self, path: str):
        self.interpreter = interpreter(path)
        ((self.key, _),) = self.interpreter.get_signature_list().items()
        self.runner = self.interpreter.get_signature_runner(self.key)

    def __call__(self, **inputs) -> dict:
        inputs = {k: np.asarray(v) for k, v in inputs.items()}
        count = len(next(iter(inputs.values())))
        rows = [self.runner(**{k: v[i : i + 1] for k, v in inputs.items()}) for i in range(count)]
        return {k: np.concatenate([r[k] for r in rows]) for k in rows[0]}


def within_tolerance(errors: dict, mode: str) -> bool:
    return all(bound is None or errors[key] <= bound for key, bound in TOLERANCE[mode].items())


def parity(saved_model, tflite_dir: str, mode: str, inputs: dict) -> dict:
    """{signature: {max, p99, mean} of |tflite - SavedModel| of the output image in uint8 levels} on the given inputs
    ({signature: {input: array}}), with `saved_model` a tf.saved_model.load result."""
    errors = {}
    for name, feed in inputs.items():
        expected = saved_model.signatures[name](**{k: tf.constant(v) for k, v in feed.items()})[
            "image"
        ].numpy()
        got = Runner(os.path.join(tflite_dir, file_name(name, mode)))(**feed)["image"]
        diff = np.abs(got.astype(np.int32) - expected.astype(np.int32))
        errors[name] = {
            "max": int(diff.max()),
            "p99": float(np.percentile(diff, 99)),
            "mean": float(diff.mean()),
        }
    return errors
