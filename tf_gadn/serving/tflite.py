"""TFLite previews for phones (BUILD.md, "Serving"): `transfer` and `generate` converted from the same
functions the SavedModel serves, in three modes, plus a metadata JSON a mobile app reads (input/output specs, artists).

Modes: `float32` (no optimisation), `float16` (weights stored as float16, dequantised at load), `dynamic_int8`
(dynamic-range quantisation: int8 weights, activations quantised on the fly; no representative data set needed).
The phone versions take uint8 images already at the model size and skip the Assert ops of the served signatures
(TFLite has none; its Gather rejects an out-of-range artist id by itself). `TOLERANCE` is the parity each mode keeps
against the SavedModel, in uint8 levels of the output image; tests/test_tflite.py checks it.
"""
from __future__ import annotations

import os

import numpy as np
import tensorflow as tf

from tf_gadn.data import records

SIGNATURES = ("transfer", "generate")
MODES = ("float32", "float16", "dynamic_int8")
# |tflite - SavedModel| over output pixels in uint8 levels (of 255): largest, 99th percentile, mean. float32 differs
# only by op order (a rounding flip of one level); float16 weights move a few pixels by a few levels; int8 weights
# move every pixel a little and a few isolated ones a lot (61 levels seen at 256 px), so that mode has no bound on the
# largest error, only on p99 and mean. Measured: tiny test model and a 256 px demo trunk (BUILD.md).
TOLERANCE = {"float32": {"max": 1, "p99": 1, "mean": 0.01},
             "float16": {"max": 4, "p99": 2, "mean": 0.25},
             "dynamic_int8": {"max": None, "p99": 32, "mean": 4.0}}


def _converter(concrete, mode: str) -> tf.lite.TFLiteConverter:
    if mode not in MODES:
        raise ValueError(f"tflite mode must be one of {MODES}, got {mode!r}")
    holder = tf.Module()  # only this function's variables: the module's name table would need TF Select ops
    holder.variables_used = list(concrete.variables)
    converter = tf.lite.TFLiteConverter.from_concrete_functions([concrete], holder)
    if mode != "float32":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    if mode == "float16":
        converter.target_spec.supported_types = [tf.float16]
    return converter


def _specs(named_specs) -> list[dict]:
    return [{"name": name, "shape": [-1 if d is None else int(d) for d in spec.shape], "dtype": spec.dtype.name}
            for name, spec in named_specs]


def file_name(signature: str, mode: str) -> str:
    return f"{signature}.{mode}.tflite"


def convert(module, out_dir: str, modes, artists: list[dict]) -> list[str]:
    """Writes OUT_DIR/<signature>.<mode>.tflite for transfer and generate, and OUT_DIR/<mode>.json, for each mode;
    returns the JSON paths. Each function is traced once for all modes."""
    os.makedirs(out_dir, exist_ok=True)
    concretes = {name: module.tflite_function(name) for name in SIGNATURES}
    meta_paths = []
    for mode in modes:
        meta = {"mode": mode, "image_size": module.image_size, "color_in_model": module.color,
                "image_format": "uint8 RGB [1, size, size, 3] in and out",
                "artists": [a["name"] for a in artists], "tolerance_uint8_levels": TOLERANCE[mode], "signatures": {}}
        for name, concrete in concretes.items():
            path = os.path.join(out_dir, file_name(name, mode))
            with open(path + ".tmp", "wb") as f:
                f.write(_converter(concrete, mode).convert())
            os.replace(path + ".tmp", path)
            meta["signatures"][name] = {"file": os.path.basename(path), "bytes": os.path.getsize(path),
                                        "inputs": _specs((s.name, s) for s in concrete.structured_input_signature[0]),
                                        "outputs": _specs(sorted(concrete.structured_outputs.items()))}
        meta_paths.append(os.path.join(out_dir, f"{mode}.json"))
        records.write_json(meta_paths[-1], meta)
    return meta_paths


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
        self.key = next(iter(self.interpreter.get_signature_list()))
        self.runner = self.interpreter.get_signature_runner(self.key)

    def __call__(self, **inputs) -> dict:
        inputs = {k: np.asarray(v) for k, v in inputs.items()}
        count = len(next(iter(inputs.values())))
        rows = [self.runner(**{k: v[i:i + 1] for k, v in inputs.items()}) for i in range(count)]
        return {k: np.concatenate([r[k] for r in rows]) for k in rows[0]}


def within_tolerance(errors: dict, mode: str) -> bool:
    return all(bound is None or errors[key] <= bound for key, bound in TOLERANCE[mode].items())


def parity(saved_model, tflite_dir: str, mode: str, inputs: dict) -> dict:
    """{signature: {max, p99, mean} of |tflite - SavedModel| of the output image in uint8 levels} on the given inputs
    ({signature: {input: array}}), with `saved_model` a tf.saved_model.load result."""
    errors = {}
    for name, feed in inputs.items():
        expected = saved_model.signatures[name](**{k: tf.constant(v) for k, v in feed.items()})["image"].numpy()
        got = Runner(os.path.join(tflite_dir, file_name(name, mode)))(**feed)["image"]
        diff = np.abs(got.astype(np.int32) - expected.astype(np.int32))
        errors[name] = {"max": int(diff.max()), "p99": float(np.percentile(diff, 99)), "mean": float(diff.mean())}
    return errors
