"""The model side of the local TF-Serving-compatible server (tf_gadn.serve): ModelServerConfig parsing, version
policies and labels, polling base paths for new versions, and request checks that answer with TF Serving's own
status codes and messages (tensorflow_serving/servables/tensorflow/predict_util.cc, core/server_core.cc).

DESIGN.md "Export and serving": the tensorflow_model_server binary cannot be installed here, so this module serves the
same `<base_path>/<version>/` SavedModel directories the real server would, and fails the same way on bad requests.
"""
from __future__ import annotations

import dataclasses
import io
import logging
import os
import re
import threading

import grpc
import numpy as np
import tensorflow as tf
from google.protobuf import text_format
from tensorflow.core.protobuf import saved_model_pb2
from tensorflow_serving.apis import get_model_metadata_pb2, get_model_status_pb2, status_pb2
from tensorflow_serving.config import model_server_config_pb2

State = get_model_status_pb2.ModelVersionStatus.State
DEFAULT_SIGNATURE = "serving_default"


class ServingError(Exception):
    """A request failure with the gRPC status code TF Serving gives it; the server answers it and keeps serving."""

    def __init__(self, code: grpc.StatusCode, message: str):
        super().__init__(message)
        self.code, self.message = code, message


def invalid(message: str) -> ServingError:
    return ServingError(grpc.StatusCode.INVALID_ARGUMENT, message)


_CODES = {code.value[0]: code for code in grpc.StatusCode}


def from_tf_error(error: tf.errors.OpError) -> ServingError:
    """TF error codes are the canonical codes gRPC uses; keep the op's message, drop the graph stack."""
    lines = [line.strip() for line in str(error.message).splitlines()]
    useful = [line for line in lines if line and not line.startswith(("[[", "Detected at", "<stack", "Graph exec"))]
    return ServingError(_CODES.get(error.error_code, grpc.StatusCode.UNKNOWN), " ".join(useful) or str(error))


def read_model_config(path: str) -> list:
    """ModelConfig protos of a text-format ModelServerConfig; a relative base_path is taken relative to the file."""
    config = model_server_config_pb2.ModelServerConfig()
    with open(path, encoding="utf-8") as f:
        text_format.Parse(f.read(), config)
    if config.WhichOneof("config") != "model_config_list":
        raise ValueError(f"{path!r}: only model_config_list is supported")
    models = list(config.model_config_list.config)
    for model in models:
        if model.model_platform not in ("", "tensorflow"):
            raise ValueError(f"model {model.name!r}: platform {model.model_platform!r} is not supported")
        if not os.path.isabs(model.base_path):
            model.base_path = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(path)), model.base_path))
    return models


@dataclasses.dataclass
class Signature:
    """One signature of a loaded version: the callable and its input/output specs by alias."""
    name: str
    function: object
    inputs: dict
    outputs: dict

    def check(self, inputs: dict, max_image_pixels: int, output_filter=()) -> None:
        """TF Serving's checks before Session::Run, then the shape/size checks the graph would make later."""
        for alias in output_filter:
            if alias not in self.outputs:
                raise invalid(f"output tensor alias not found in signature: {alias} Outputs expected to be in the "
                              f"set {{{','.join(sorted(self.outputs))}}}.")
        if len(set(output_filter)) != len(output_filter):
            raise invalid("duplicate output tensor alias in output_filter")
        if set(inputs) != set(self.inputs):
            sent, wanted = sorted(inputs), sorted(self.inputs)
            extra, missing = ",".join(sorted(set(sent) - set(wanted))), ",".join(sorted(set(wanted) - set(sent)))
            raise invalid(f"input size does not match signature: {len(sent)}!={len(wanted)} len({{{','.join(sent)}}})"
                          f" != len({{{','.join(wanted)}}}). Sent extra: {{{extra}}}. Missing but required: {{{missing}}}.")
        for position, (alias, spec) in enumerate(sorted(self.inputs.items())):
            value = inputs[alias]
            if value.dtype != spec.dtype.as_numpy_dtype and not (spec.dtype == tf.string and value.dtype == object):
                raise invalid(f"Expects arg[{position}] ({alias}) to be {spec.dtype.name} but "
                              f"{tf.as_dtype(value.dtype).name if value.dtype != object else 'string'} is provided")
            if not spec.shape.is_compatible_with(value.shape):
                raise invalid(f"input {alias!r} has shape {list(value.shape)}, the signature expects "
                              f"{[-1 if d is None else d for d in spec.shape.as_list()]}")
            if spec.dtype == tf.uint8 and value.ndim >= 3 and np.prod(value.shape[-3:-1]) > max_image_pixels:
                raise invalid(f"input {alias!r}: images of {value.shape[-3]}x{value.shape[-2]} exceed the limit of "
                              f"{max_image_pixels} pixels")
            if spec.dtype == tf.string and alias.endswith("_bytes"):
                for encoded in value.reshape(-1):
                    check_encoded_image(alias, encoded, max_image_pixels)

    def run(self, inputs: dict) -> dict:
        try:
            outputs = self.function(**{k: tf.constant(v) for k, v in inputs.items()})
        except tf.errors.OpError as error:
            raise from_tf_error(error) from None
        return {k: v.numpy() for k, v in outputs.items()}


def check_encoded_image(alias: str, encoded: bytes, max_image_pixels: int) -> None:
    """Refuses an image whose *header* promises too many pixels, before anything decodes it (decompression bombs);
    bytes PIL cannot identify are left to the graph's decoder, which answers INVALID_ARGUMENT itself."""
    from PIL import Image, UnidentifiedImageError
    try:
        with Image.open(io.BytesIO(encoded)) as image:
            width, height = image.size
    except (UnidentifiedImageError, OSError, ValueError):
        return
    except Image.DecompressionBombError:
        width = height = max_image_pixels + 1
    if width * height > max_image_pixels:
        raise invalid(f"input {alias!r}: a {width}x{height} image exceeds the limit of {max_image_pixels} pixels")


class Version:
    """A loaded SavedModel version with its signatures and the SignatureDefs GetModelMetadata returns."""

    def __init__(self, number: int, path: str):
        self.number, self.path = number, path
        self.loaded = tf.saved_model.load(path)
        self.signatures = {
            name: Signature(name, fn, dict(fn.structured_input_signature[1]), dict(fn.structured_outputs))
            for name, fn in self.loaded.signatures.items()}
        with open(os.path.join(path, "saved_model.pb"), "rb") as f:
            self.signature_defs = saved_model_pb2.SavedModel.FromString(f.read()).meta_graphs[0].signature_def

    def signature(self, name: str) -> Signature:
        if (name or DEFAULT_SIGNATURE) not in self.signatures:
            raise ServingError(grpc.StatusCode.FAILED_PRECONDITION,
                               f'Serving signature key "{name or DEFAULT_SIGNATURE}" not found.')
        return self.signatures[name or DEFAULT_SIGNATURE]


class Model:
    """One ModelConfig: which versions on disk to serve (version policy), labels, and their load states."""

    def __init__(self, config):
        self.config = config
        self.name, self.base_path = config.name, config.base_path
        self.labels = dict(config.version_labels)
        self.versions: dict[int, Version] = {}
        self.states: dict[int, tuple[int, str]] = {}   # version -> (State, error message)
        self.lock = threading.Lock()

    def on_disk(self) -> list[int]:
        """All-digit child directories holding a saved_model.pb (export.py renames complete versions into place)."""
        if not os.path.isdir(self.base_path):
            return []
        return sorted(int(d) for d in os.listdir(self.base_path)
                      if re.fullmatch(r"\d+", d) and os.path.exists(os.path.join(self.base_path, d, "saved_model.pb")))

    def wanted(self, available: list[int]) -> set[int]:
        policy = self.config.model_version_policy
        choice = policy.WhichOneof("policy_choice")
        if choice == "all":
            return set(available)
        if choice == "specific":
            return set(available) & set(policy.specific.versions)
        return set(available[-max(policy.latest.num_versions, 1):]) if available else set()

    def poll(self) -> None:
        """Loads newly wanted versions, unloads unwanted ones; a version that fails to load is END with its error."""
        wanted = self.wanted(self.on_disk())
        for number in sorted(wanted - set(self.versions) - {v for v, (s, _) in self.states.items() if s == State.END}):
            self.states[number] = (State.LOADING, "")
            try:
                version = Version(number, os.path.join(self.base_path, str(number)))
            except Exception as error:  # noqa: BLE001 - any load failure is reported in GetModelStatus
                logging.exception("loading %s version %d failed", self.name, number)
                self.states[number] = (State.END, f"{type(error).__name__}: {error}")
                continue
            with self.lock:
                self.versions[number] = version
            self.states[number] = (State.AVAILABLE, "")
            logging.info("serving %s version %d", self.name, number)
        for number in sorted(set(self.versions) - wanted):
            with self.lock:
                del self.versions[number]
            self.states[number] = (State.END, "")

    def labelled(self, label: str) -> int:
        """The version number a label points at (TF Serving: an unknown label is INVALID_ARGUMENT)."""
        if label not in self.labels:
            raise invalid(f"Unrecognized servable version label: {label}")
        return self.labels[label]

    def resolve(self, spec) -> Version:
        """The version a ModelSpec asks for: explicit version, label, or the newest available."""
        choice = spec.WhichOneof("version_choice")
        with self.lock:
            if choice == "version_label":
                number = self.labelled(spec.version_label)
                request = f"Specific({self.name}, {number})"
            elif choice == "version":
                number, request = spec.version.value, f"Specific({self.name}, {spec.version.value})"
            else:
                number, request = max(self.versions, default=None), f"Latest({self.name})"
            if number not in self.versions:
                raise ServingError(grpc.StatusCode.NOT_FOUND, f"Servable not found for request: {request}")
            return self.versions[number]


class ModelRegistry:
    """Every configured model, polled for new versions every `poll_seconds` by a daemon thread."""

    def __init__(self, model_config_path: str, poll_seconds: float = 1.0):
        self.models = {c.name: Model(c) for c in read_model_config(model_config_path)}
        self.poll_seconds = poll_seconds
        self._stop = threading.Event()
        self._thread = None

    def poll(self) -> None:
        for model in self.models.values():
            model.poll()

    def start(self) -> "ModelRegistry":
        self.poll()
        if self.poll_seconds > 0:
            self._thread = threading.Thread(target=self._loop, name="version-poller", daemon=True)
            self._thread.start()
        return self

    def _loop(self) -> None:
        while not self._stop.wait(self.poll_seconds):
            self.poll()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()

    def model(self, name: str, request: str = "") -> Model:
        if name not in self.models:
            raise ServingError(grpc.StatusCode.NOT_FOUND,
                               f"Servable not found for request: {request or f'Latest({name})'}")
        return self.models[name]

    def resolve(self, spec) -> Version:
        return self.model(spec.name).resolve(spec)

    def status(self, spec) -> get_model_status_pb2.GetModelStatusResponse:
        """ModelService.GetModelStatus: every version's load state, or the asked version's (by number or label)."""
        model = self.model(spec.name)
        states = dict(model.states)
        if not states:
            raise ServingError(grpc.StatusCode.NOT_FOUND, f"Could not find any versions of model {spec.name}")
        choice = spec.WhichOneof("version_choice")
        if choice == "version_label":
            wanted = [model.labelled(spec.version_label)]
        else:
            wanted = [spec.version.value] if choice == "version" else sorted(states)
        response = get_model_status_pb2.GetModelStatusResponse()
        for number in wanted:
            if number not in states:
                raise ServingError(grpc.StatusCode.NOT_FOUND, f"Could not find version {number} of model {spec.name}")
            state, message = states[number]
            response.model_version_status.add(version=number, state=state, status=status_pb2.StatusProto(
                error_code=2 if message else 0, error_message=message))   # 2 = UNKNOWN: the load failed
        return response

    def metadata(self, spec, fields) -> get_model_metadata_pb2.GetModelMetadataResponse:
        """PredictionService.GetModelMetadata: the SignatureDefs of the version a spec resolves to."""
        if not fields:
            raise invalid("GetModelMetadataRequest must specify at least one metadata_field")
        for field in fields:
            if field != "signature_def":
                raise invalid(f"Metadata field {field} is not supported")
        version = self.resolve(spec)
        response = get_model_metadata_pb2.GetModelMetadataResponse()
        response.model_spec.name = spec.name
        response.model_spec.version.value = version.number
        signature_map = get_model_metadata_pb2.SignatureDefMap()
        for name, definition in version.signature_defs.items():
            signature_map.signature_def[name].CopyFrom(definition)
        response.metadata["signature_def"].Pack(signature_map)
        return response
