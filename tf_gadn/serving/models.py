"""The model side of the local TF-Serving-compatible server (tf_gadn.serve): ModelServerConfig parsing, version
policies and labels, polling base paths for new versions, and request checks that answer with TF Serving's own
status codes and messages (tensorflow_serving/servables/tensorflow/predict_util.cc, core/server_core.cc).

Why (BUILD.md, "Serving"): the tensorflow_model_server binary cannot be installed here, so this module serves the
same `<base_path>/<version>/` SavedModel directories the real server would, and fails the same way on bad requests.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import os
import re
import threading
import time

import grpc
import tensorflow as tf
from google.protobuf import text_format
from tensorflow.core.protobuf import saved_model_pb2
from tensorflow_serving.apis import get_model_metadata_pb2, get_model_status_pb2, status_pb2
from tensorflow_serving.config import model_server_config_pb2

from tf_gadn.serving.image_headers import MAX_IMAGE_PIXELS, image_size

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
    useful = [
        line
        for line in lines
        if line and not line.startswith(("[[", "Detected at", "<stack", "Graph exec"))
    ]
    return ServingError(
        _CODES.get(error.error_code, grpc.StatusCode.UNKNOWN), " ".join(useful) or str(error)
    )


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
            raise ValueError(
                f"model {model.name!r}: platform {model.model_platform!r} is not supported"
            )
        if not os.path.isabs(model.base_path):
            model.base_path = os.path.normpath(
                os.path.join(os.path.dirname(os.path.abspath(path)), model.base_path)
            )
    return models


@dataclasses.dataclass(frozen=True)
class RequestLimits:
    """What one request may make the server allocate. Checked on the shapes a request *declares* (a TensorProto's
    tensor_shape, a JSON list's lengths) before anything is materialised: a 30-byte TensorProto may declare a tensor
    of gigabytes, which tf.make_ndarray would allocate in full."""

    max_rows: int = 64  # TF Serving's max_batch_size when batching is on
    max_tensor_bytes: int = (
        64 << 20
    )  # one input once materialised (strings count a pointer per element)
    max_image_pixels: int = MAX_IMAGE_PIXELS


def tensor_declaration(alias: str, proto) -> tuple[tuple, tf.DType]:
    """(shape, dtype) a TensorProto declares, read without materialising it; malformed declarations are refused
    with TF Serving's "tensor parsing error" (INVALID_ARGUMENT)."""
    shape = tuple(dim.size for dim in proto.tensor_shape.dim)
    if proto.tensor_shape.unknown_rank or any(size < 0 for size in shape):
        raise invalid(f"tensor parsing error: {alias} (shape {list(shape)} is not fully defined)")
    try:
        dtype = tf.as_dtype(proto.dtype)
    except TypeError:
        raise invalid(f"tensor parsing error: {alias} (unknown dtype {proto.dtype})") from None
    if (
        proto.tensor_content
        and dtype != tf.string
        and len(proto.tensor_content) != math.prod(shape) * dtype.size
    ):
        raise invalid(
            f"tensor parsing error: {alias} ({len(proto.tensor_content)} content bytes for a "
            f"{list(shape)} {dtype.name} tensor)"
        )
    return shape, dtype


@dataclasses.dataclass
class Signature:
    """One signature of a loaded version: the callable and its input/output specs by alias."""

    name: str
    function: object
    inputs: dict
    outputs: dict

    def check_declared(self, declared: dict, limits: RequestLimits, output_filter=()) -> None:
        """TF Serving's checks before Session::Run, made on {alias: (shape, dtype)} as the request declares them,
        then the limits: rows (TF Serving's batching message), bytes once materialised, image pixels."""
        for alias in output_filter:
            if alias not in self.outputs:
                raise invalid(
                    f"output tensor alias not found in signature: {alias} Outputs expected to be in the "
                    f"set {{{','.join(sorted(self.outputs))}}}."
                )
        if len(set(output_filter)) != len(output_filter):
            raise invalid("duplicate output tensor alias in output_filter")
        if set(declared) != set(self.inputs):
            sent, wanted = sorted(declared), sorted(self.inputs)
            extra, missing = (
                ",".join(sorted(set(sent) - set(wanted))),
                ",".join(sorted(set(wanted) - set(sent))),
            )
            raise invalid(
                f"input size does not match signature: {len(sent)}!={len(wanted)} len({{{','.join(sent)}}})"
                f" != len({{{','.join(wanted)}}}). Sent extra: {{{extra}}}. Missing but required: {{{missing}}}."
            )
        for position, (alias, spec) in enumerate(sorted(self.inputs.items())):
            shape, dtype = declared[alias]
            if dtype != spec.dtype:
                raise invalid(
                    f"Expects arg[{position}] ({alias}) to be {spec.dtype.name} but {dtype.name} is provided"
                )
            if not spec.shape.is_compatible_with(shape):
                raise invalid(
                    f"input {alias!r} has shape {list(shape)}, the signature expects "
                    f"{[-1 if d is None else d for d in spec.shape.as_list()]}"
                )
            if shape and shape[0] > limits.max_rows:
                raise invalid(
                    f"Task size {shape[0]} is larger than maximum input batch size {limits.max_rows}"
                )
            size = math.prod(shape) * (8 if dtype == tf.string else dtype.size)
            if size > limits.max_tensor_bytes:
                raise invalid(
                    f"tensor parsing error: {alias} declares {list(shape)} {dtype.name}, {size} bytes, over "
                    f"the limit of {limits.max_tensor_bytes}"
                )
            if (
                dtype == tf.uint8
                and len(shape) >= 3
                and shape[-3] * shape[-2] > limits.max_image_pixels
            ):
                raise invalid(
                    f"input {alias!r}: images of {shape[-3]}x{shape[-2]} exceed the limit of "
                    f"{limits.max_image_pixels} pixels"
                )

    def check_encoded(self, inputs: dict, limits: RequestLimits) -> None:
        """Encoded images (`*_bytes` string inputs) are sized from their headers before the graph decodes them."""
        for alias, spec in self.inputs.items():
            if spec.dtype == tf.string and alias.endswith("_bytes"):
                for encoded in inputs[alias].reshape(-1):
                    check_encoded_image(alias, encoded, limits.max_image_pixels)

    def run(self, inputs: dict) -> dict:
        try:
            outputs = self.function(**{k: tf.constant(v) for k, v in inputs.items()})
        except tf.errors.OpError as error:
            raise from_tf_error(error) from None
        return {k: v.numpy() for k, v in outputs.items()}


def check_encoded_image(alias: str, encoded: bytes, max_image_pixels: int) -> None:
    """Refuses an image whose *header* promises too many pixels, or whose size cannot be read from its header (not
    PNG/JPEG/GIF/BMP, or cut short): nothing reaches the graph's decoder unchecked (decompression bombs)."""
    size = image_size(bytes(encoded))
    if size is None:
        raise invalid(
            f"input {alias!r}: not a PNG, JPEG, GIF or BMP image (or its header is cut short)"
        )
    width, height = size
    if width * height > max_image_pixels:
        raise invalid(
            f"input {alias!r}: a {width}x{height} image exceeds the limit of {max_image_pixels} pixels"
        )


class Version:
    """A loaded SavedModel version with its signatures and the SignatureDefs GetModelMetadata returns."""

    def __init__(self, number: int, path: str):
        from tf_gadn.serving import batching, warmup

        self.number, self.path = number, path
        self.loaded = tf.saved_model.load(path)
        self.signatures = {
            name: Signature(
                name, fn, dict(fn.structured_input_signature[1]), dict(fn.structured_outputs)
            )
            for name, fn in self.loaded.signatures.items()
        }
        with open(os.path.join(path, "saved_model.pb"), "rb") as f:
            self.signature_defs = (
                saved_model_pb2.SavedModel.FromString(f.read()).meta_graphs[0].signature_def
            )
        params_file = os.path.join(path, batching.PER_MODEL_FILE)
        self.batching = (
            batching.read_batching_config(params_file) if os.path.exists(params_file) else None
        )
        # TF Serving replays assets.extra/tf_serving_warmup_requests before a version becomes AVAILABLE
        requests = warmup.read(path)
        self.warmup_requests, self.warmup_seconds = len(requests), warmup.replay(self, requests)
        if requests:
            logging.info(
                "warmed up %s with %d requests in %.3f s", path, len(requests), self.warmup_seconds
            )

    def signature(self, name: str) -> Signature:
        if (name or DEFAULT_SIGNATURE) not in self.signatures:
            raise ServingError(
                grpc.StatusCode.FAILED_PRECONDITION,
                f'Serving signature key "{name or DEFAULT_SIGNATURE}" not found.',
            )
        return self.signatures[name or DEFAULT_SIGNATURE]


LOAD_RETRY_MAX_SECONDS = 60.0  # TF Serving's default --load_retry_interval_micros
INT64_MAX = 2**63 - 1


class Model:
    """One ModelConfig: which versions on disk to serve (version policy), labels, and their load states.

    Transitions follow TF Serving's AvailabilityPreservingPolicy (core/availability_preserving_policy.cc): a new
    version is loaded in full before an old one is unloaded, and while no wanted version has loaded the newest
    loaded one keeps serving. A version that fails to load (half written, no variables/) is retried on later polls,
    backing off from the poll interval to a minute (TF Serving retries 5 times a minute apart, then gives up)."""

    def __init__(self, config, poll_seconds: float = 1.0):
        self.config = config
        self.name, self.base_path = config.name, config.base_path
        self.labels = dict(config.version_labels)
        self.versions: dict[int, Version] = {}
        self.states: dict[int, tuple[int, str]] = {}  # version -> (State, error message)
        self.retries: dict[
            int, tuple[int, float]
        ] = {}  # failed version -> (failures, monotonic time of next try)
        self.poll_seconds = poll_seconds
        self.lock = threading.Lock()

    def on_disk(self) -> list[int]:
        """All-digit child directories holding a saved_model.pb; hidden `.tmp-*` folders of exports in progress
        (or killed) are not versions, and neither is a number beyond int64 (ModelSpec.version)."""
        if not os.path.isdir(self.base_path):
            return []
        return sorted(
            int(d)
            for d in os.listdir(self.base_path)
            if re.fullmatch(r"\d+", d)
            and int(d) <= INT64_MAX
            and os.path.exists(os.path.join(self.base_path, d, "saved_model.pb"))
        )

    def wanted(self, available: list[int]) -> set[int]:
        policy = self.config.model_version_policy
        choice = policy.WhichOneof("policy_choice")
        if choice == "all":
            return set(available)
        if choice == "specific":
            return set(available) & set(policy.specific.versions)
        return set(available[-max(policy.latest.num_versions, 1) :]) if available else set()

    def _load(self, number: int) -> None:
        """Loads one version; a failure is logged, reported in GetModelStatus and retried after a back-off."""
        failures, next_try = self.retries.get(number, (0, 0.0))
        if time.monotonic() < next_try:
            return
        if not failures:
            self.states[number] = (State.LOADING, "")
        try:
            version = Version(number, os.path.join(self.base_path, str(number)))
        except Exception as error:  # noqa: BLE001 - any load failure is reported in GetModelStatus and retried
            delay = min(max(self.poll_seconds, 0.1) * 2**failures, LOAD_RETRY_MAX_SECONDS)
            logging.error(
                "loading %s version %d failed (attempt %d, next in %.1f s): %s: %s",
                self.name,
                number,
                failures + 1,
                delay,
                type(error).__name__,
                error,
            )
            self.retries[number] = (failures + 1, time.monotonic() + delay)
            self.states[number] = (State.END, f"{type(error).__name__}: {error}")
            return
        with self.lock:
            self.versions[number] = version
        self.retries.pop(number, None)
        self.states[number] = (State.AVAILABLE, "")
        logging.info("serving %s version %d", self.name, number)

    def poll(self) -> None:
        """Loads wanted versions (newest first), then unloads unwanted ones unless that would leave nothing to
        serve: while no wanted version is loaded, the newest loaded version stays (load-then-swap)."""
        wanted = self.wanted(self.on_disk())
        for number in sorted(wanted - set(self.versions), reverse=True):
            self._load(number)
        for number in (
            set(self.retries) - wanted
        ):  # deleted or no longer wanted: forget its failures
            del self.retries[number]
            self.states.pop(number, None)
        unwanted = sorted(set(self.versions) - wanted)
        if wanted and not wanted & set(self.versions):
            unwanted = unwanted[:-1]  # keep the newest loaded version until a wanted one is ready
        for number in unwanted:
            with self.lock:
                del self.versions[number]
            self.states[number] = (State.END, "")
            logging.info("unloaded %s version %d", self.name, number)

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
                raise ServingError(
                    grpc.StatusCode.NOT_FOUND, f"Servable not found for request: {request}"
                )
            return self.versions[number]


class ModelRegistry:
    """Every configured model, polled for new versions every `poll_seconds` by a daemon thread; with
    `config_poll_seconds` the config file is re-read that often and changes applied while serving, as
    tensorflow_model_server's --model_config_file_poll_wait_seconds (new models load, removed ones unload, labels
    and version policies change in place)."""

    def __init__(
        self, model_config_path: str, poll_seconds: float = 1.0, config_poll_seconds: float = 0.0
    ):
        self.config_path = model_config_path
        self.models = {c.name: Model(c, poll_seconds) for c in read_model_config(model_config_path)}
        self.poll_seconds, self.config_poll_seconds = poll_seconds, config_poll_seconds
        self._stop = threading.Event()
        self._threads: list = []
        self._poll_lock = threading.Lock()  # version polls and config reloads take turns

    def poll(self) -> None:
        with self._poll_lock:
            for model in list(self.models.values()):
                model.poll()

    def apply_config(self, configs: list) -> None:
        """Makes `configs` (ModelConfig protos) the served set: a model whose name and base path stay keeps its
        loaded versions and takes the new labels and version policy; others load from scratch or go."""
        with self._poll_lock:
            models = {}
            for config in configs:
                old = self.models.get(config.name)
                if old is not None and old.base_path == config.base_path:
                    with old.lock:
                        old.config, old.labels = config, dict(config.version_labels)
                    models[config.name] = old
                else:
                    models[config.name] = Model(config, self.poll_seconds)
            removed = set(self.models) - set(models)
            self.models = models
            for model in models.values():
                model.poll()
        if removed:
            logging.info("models no longer configured, unloaded: %s", sorted(removed))

    def reload_config(self) -> None:
        self.apply_config(read_model_config(self.config_path))

    def start(self) -> ModelRegistry:
        self.poll()
        for seconds, step, name in (
            (self.poll_seconds, self.poll, "version-poller"),
            (self.config_poll_seconds, self.reload_config, "config-poller"),
        ):
            if seconds > 0:
                thread = threading.Thread(
                    target=self._loop, args=(seconds, step), name=name, daemon=True
                )
                thread.start()
                self._threads.append(thread)
        return self

    def _loop(self, seconds: float, step) -> None:
        while not self._stop.wait(seconds):
            try:
                step()
            except (
                OSError
            ):  # e.g. a base path made unreadable: keep serving what is loaded, keep polling
                logging.exception("scanning for model versions failed")
            except Exception:  # noqa: BLE001 - a bad edit of the config file keeps the last good config serving
                logging.exception(
                    "reloading %s failed; the previous config stays", self.config_path
                )

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join()

    def available(self) -> dict:
        """{model name: whether a version of it is loaded} (TF Serving waits for all at start; the health check)."""
        return {name: bool(model.versions) for name, model in self.models.items()}

    def model(self, name: str, request: str = "") -> Model:
        if name not in self.models:
            raise ServingError(
                grpc.StatusCode.NOT_FOUND,
                f"Servable not found for request: {request or f'Latest({name})'}",
            )
        return self.models[name]

    def resolve(self, spec) -> Version:
        return self.model(spec.name).resolve(spec)

    def status(self, spec) -> get_model_status_pb2.GetModelStatusResponse:
        """ModelService.GetModelStatus as model_servers/get_model_status_impl.cc: the asked version's load state
        when the spec names a version number, else every version, newest first (a label is not a version there:
        it is ignored, not resolved)."""
        model = self.model(spec.name)
        states = dict(model.states)
        if not states:
            raise ServingError(
                grpc.StatusCode.NOT_FOUND, f"Could not find any versions of model {spec.name}"
            )
        if spec.WhichOneof("version_choice") == "version":
            wanted = [spec.version.value]
        else:
            wanted = sorted(states, reverse=True)
        response = get_model_status_pb2.GetModelStatusResponse()
        for number in wanted:
            if number not in states:
                raise ServingError(
                    grpc.StatusCode.NOT_FOUND,
                    f"Could not find version {number} of model {spec.name}",
                )
            state, message = states[number]
            response.model_version_status.add(
                version=number,
                state=state,
                status=status_pb2.StatusProto(
                    error_code=2 if message else 0, error_message=message
                ),
            )  # 2 = UNKNOWN: the load failed
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
