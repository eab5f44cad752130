"""`python -m tf_gadn.serve --model_config serving/models.config --port 8500 --rest_port 8501`: a local server that
speaks TF Serving's gRPC API (PredictionService.Predict and GetModelMetadata, ModelService.GetModelStatus) and its REST
API (`/v1/models/<name>[/versions/<v>|/labels/<l>]:predict`, row and columnar formats; model status; metadata) over
the same `<base_path>/<version>/` directories (DESIGN.md "Export and serving").

Why: tensorflow_model_server cannot be installed on these machines, yet the client (tf_gadn.client) must work
unchanged against the real server, so the API, the status codes and their messages are TF Serving's. Binds 127.0.0.1
unless told otherwise; caps message size, and the rows, bytes and image pixels a request *declares* before anything is
materialised (tf_gadn.serving.models.RequestLimits, image sizes read from raw headers by
tf_gadn.serving.image_headers); optionally batches concurrent requests as TF Serving does (tf_gadn.serving.batching,
strict by default); picks up new versions and config edits while running, loading each version in full (and
replaying its warm-up records) before the old one goes (tf_gadn.serving.models). REST runs on waitress, a production WSGI server (listen
backlog, read timeouts, Content-Length and chunked bodies), around a small WSGI application.
"""
from __future__ import annotations

import base64
import dataclasses
import json
import logging
import re
import threading
import time
from concurrent import futures
from http import HTTPStatus

import grpc
import numpy as np
import tensorflow as tf
from absl import app, flags
from google.protobuf import json_format
from tensorflow_serving.apis import (get_model_metadata_pb2, model_management_pb2, model_service_pb2_grpc,
                                     predict_pb2, prediction_service_pb2_grpc)
from waitress import wasyncore
from waitress.server import create_server

from tf_gadn.serving.client import MAX_MESSAGE_BYTES, model_spec
from tf_gadn.serving.image_headers import MAX_IMAGE_PIXELS
from tf_gadn.serving.batching import Batcher, BatchingParameters, read_batching_config
from tf_gadn.serving.models import (DEFAULT_SIGNATURE, INT64_MAX, ModelRegistry, RequestLimits, ServingError, invalid,
                                   tensor_declaration)

MAX_REQUEST_ROWS = 64          # rows per request without batching (with batching: max_batch_size, as TF Serving)
REST_BACKLOG = 1024            # listen backlog of the REST socket (waitress's default; the kernel caps it at somaxconn)
REST_THREADS = 16              # REST requests run concurrently (gRPC: grpc_workers)
REST_READ_TIMEOUT_SECONDS = 30   # a REST connection idle this long mid-request (or between requests) is closed
UNKNOWN_MODEL_LABEL = "<unknown>"   # metrics label of every model name the config does not list (bounded labels)
# TF Serving's mapping of status codes to HTTP (model_servers/http_server.cc)
HTTP_STATUS = {grpc.StatusCode.INVALID_ARGUMENT: 400, grpc.StatusCode.FAILED_PRECONDITION: 400,
               grpc.StatusCode.OUT_OF_RANGE: 400, grpc.StatusCode.NOT_FOUND: 404, grpc.StatusCode.UNIMPLEMENTED: 501,
               grpc.StatusCode.UNAVAILABLE: 503, grpc.StatusCode.RESOURCE_EXHAUSTED: 429,
               grpc.StatusCode.DEADLINE_EXCEEDED: 504, grpc.StatusCode.PERMISSION_DENIED: 403}


class LocalServer:
    """The servers (gRPC and REST) around one ModelRegistry; port 0 picks a free port (read .port / .rest_port)."""

    def __init__(self, model_config: str, host: str = "127.0.0.1", port: int = 8500, rest_port: int | None = 8501,
                 batching: BatchingParameters | None = None, poll_seconds: float = 1.0,
                 max_message_bytes: int = MAX_MESSAGE_BYTES, max_image_pixels: int = MAX_IMAGE_PIXELS,
                 metrics_path: str = "", grpc_workers: int = 64, max_request_rows: int = MAX_REQUEST_ROWS,
                 rest_threads: int = REST_THREADS, rest_read_timeout: int = REST_READ_TIMEOUT_SECONDS,
                 per_model_batching: bool = False, config_poll_seconds: float = 0.0,
                 wait_for_models_seconds: float = 0.0):
        self.registry = ModelRegistry(model_config, poll_seconds, config_poll_seconds)
        self.wait_for_models_seconds = wait_for_models_seconds
        self.host, self.port, self.rest_port = host, port, rest_port
        self.batcher = Batcher(batching) if batching else None
        # with per-model batching parameters each version's own max_batch_size caps its rows (in the batcher)
        self.per_model_batching = per_model_batching
        rows = min(max_request_rows, batching.max_batch_size) if batching and not per_model_batching \
            else max_request_rows
        self.limits = RequestLimits(rows, max_message_bytes, max_image_pixels)
        self.max_message_bytes = max_message_bytes
        self.metrics_path, self.grpc_workers = metrics_path, grpc_workers
        self.rest_threads, self.rest_read_timeout = rest_threads, rest_read_timeout
        self.counts: dict = {}   # (model, status) -> requests
        self.count_lock = threading.Lock()
        self._grpc = self._http = self._http_thread = None

    # ---- the one predict path of both APIs --------------------------------------------------------------------------
    def resolve(self, spec):
        version = self.registry.resolve(spec)
        return version, version.signature(spec.signature_name)

    def predict(self, version, signature, declared: dict, materialise, output_filter=()) -> dict:
        """Checks the declared {alias: (shape, dtype)} against the signature and the limits, and only then calls
        `materialise()` for the arrays; encoded images are sized from their headers before the graph decodes them."""
        signature.check_declared(declared, self.limits, output_filter)
        inputs = materialise()
        signature.check_encoded(inputs, self.limits)
        if self.batcher is not None:
            key = (version.path, signature.name)
            own = version.batching if self.per_model_batching else None
            params = dataclasses.replace(own, mode=self.batcher.params.mode) if own else None
            outputs = self.batcher.run(key, signature.run, inputs, params)
        else:
            outputs = signature.run(inputs)
        return {k: outputs[k] for k in (output_filter or outputs)}

    def answer(self, model_name: str, handler, *args):
        """Runs a handler; returns (result, None) or (None, ServingError) and counts the outcome per model (names
        the config does not list share one label, so clients cannot grow the metrics without bound)."""
        try:
            result, error = handler(*args), None
        except ServingError as e:
            result, error = None, e
        except Exception as e:  # noqa: BLE001 - a bug must not take the server down; reported as INTERNAL
            logging.exception("internal error")
            result, error = None, ServingError(grpc.StatusCode.INTERNAL, f"{type(e).__name__}: {e}")
        label = model_name if model_name in self.registry.models else UNKNOWN_MODEL_LABEL
        with self.count_lock:
            key = (label, error.code.name if error else "OK")
            self.counts[key] = self.counts.get(key, 0) + 1
        return result, error

    def metrics_text(self) -> str:
        with self.count_lock:
            lines = [f':tensorflow:serving:request_count{{model_name={json.dumps(m)},status="{s}"}} {n}'
                     for (m, s), n in sorted(self.counts.items())]
        for model in self.registry.models.values():
            for version in list(model.versions.values()):
                if version.warmup_requests:
                    lines.append(f':tensorflow:serving:model_warmup_latency_sum{{model_path={json.dumps(version.path)}'
                                 f',status="OK"}} {round(version.warmup_seconds * 1e6)}')
        if self.batcher is not None:
            lines += [f":tensorflow:serving:batching_session:processed_batch_size_count {self.batcher.batches}",
                      f":tensorflow:serving:batching_session:processed_batch_size_sum {self.batcher.rows}",
                      f":tensorflow:serving:batching_session:padding_size_sum {self.batcher.padding}"]
        return "\n".join(lines) + "\n"

    # ---- lifecycle --------------------------------------------------------------------------------------------------
    def start(self) -> "LocalServer":
        self.registry.start()
        self.wait_for_models()
        options = [("grpc.max_receive_message_length", self.max_message_bytes),
                   ("grpc.max_send_message_length", self.max_message_bytes)]
        self._grpc = grpc.server(futures.ThreadPoolExecutor(self.grpc_workers), options=options)
        prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(PredictionService(self), self._grpc)
        self._grpc.add_generic_rpc_handlers([health_handler(self)])
        model_service_pb2_grpc.add_ModelServiceServicer_to_server(ModelService(self), self._grpc)
        bound = self._grpc.add_insecure_port(f"{self.host}:{self.port}")
        if not bound:
            raise OSError(f"cannot bind gRPC to {self.host}:{self.port}")
        self.port = bound
        self._grpc.start()
        if self.rest_port is not None:
            # waitress parses HTTP/1.1 (Content-Length, chunked bodies, pipelining), buffers each body in full before
            # a worker thread sees it, refuses bodies over the limit with 413 and closes idle or stalled connections
            self._http = create_server(
                RestApp(self), host=self.host, port=self.rest_port, threads=self.rest_threads, backlog=REST_BACKLOG,
                channel_timeout=self.rest_read_timeout, cleanup_interval=1, connection_limit=512,
                asyncore_use_poll=True, max_request_body_size=self.max_message_bytes + 1, ident="tf_gadn.serve")
            self.rest_port = self._http.effective_port
            self._http_thread = threading.Thread(target=self._http.run, name="rest", daemon=True)
            self._http_thread.start()
        return self

    def wait_for_models(self) -> None:
        """As tensorflow_model_server (ServerCore::WaitUntilModelsAvailable), opens no port until every configured
        model has a version available; gives up after `wait_for_models_seconds` (0: do not wait)."""
        deadline = time.monotonic() + self.wait_for_models_seconds
        while self.wait_for_models_seconds > 0:
            missing = sorted(name for name, ready in self.registry.available().items() if not ready)
            if not missing:
                return
            if time.monotonic() > deadline:
                self.registry.stop()
                raise RuntimeError(f"{len(missing)} model(s) did not become available: {missing}")
            logging.info("waiting for a version of %s", missing)
            time.sleep(min(max(self.registry.poll_seconds, 0.05), 1.0))

    def stop(self) -> None:
        if self._http is not None:
            http = self._http
            try:
                http.trigger.pull_trigger(lambda: wasyncore.close_all(http._map))   # closed inside the event loop
            except OSError:  # the loop already closed its trigger (it has ended): close what is left from here
                wasyncore.close_all(http._map, ignore_all=True)
            self._http_thread.join(10)
            http.task_dispatcher.shutdown()
        if self._grpc is not None:
            self._grpc.stop(grace=1).wait()
        self.registry.stop()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


def _abort_on(context, error: ServingError | None) -> None:
    if error is not None:
        context.abort(error.code, error.message)


METHOD_NAMES = {"classification": "tensorflow/serving/classify", "regression": "tensorflow/serving/regress"}


def refuse_by_method_name(server: LocalServer, spec, kind: str) -> None:
    """Classify and Regress need a signature of that method; every exported signature is a Predict one, so TF
    Serving answers INVALID_ARGUMENT with its message (servables/tensorflow/classifier.cc, regressor.cc), after the
    model, version and signature were found."""
    version = server.registry.resolve(spec)
    name = spec.signature_name or DEFAULT_SIGNATURE
    if name not in version.signature_defs:
        raise invalid(f"No signature was found with the name: {name}")
    raise invalid(f"Expected {kind} signature method_name to be {METHOD_NAMES[kind]}. Was: "
                  f"{version.signature_defs[name].method_name}")


class PredictionService(prediction_service_pb2_grpc.PredictionServiceServicer):
    """Predict and GetModelMetadata; Classify and Regress fail as on TF Serving for Predict-only models
    (INVALID_ARGUMENT); MultiInference stays UNIMPLEMENTED."""

    def __init__(self, server: LocalServer):
        self.server = server

    def Classify(self, request, context):
        _, error = self.server.answer(request.model_spec.name, refuse_by_method_name, self.server,
                                      request.model_spec, "classification")
        _abort_on(context, error)

    def Regress(self, request, context):
        _, error = self.server.answer(request.model_spec.name, refuse_by_method_name, self.server,
                                      request.model_spec, "regression")
        _abort_on(context, error)

    def _predict(self, request):
        version, signature = self.server.resolve(request.model_spec)
        declared = {alias: tensor_declaration(alias, proto) for alias, proto in request.inputs.items()}

        def materialise():
            inputs = {}
            for alias, proto in request.inputs.items():
                try:
                    inputs[alias] = tf.make_ndarray(proto)
                except (TypeError, ValueError) as e:
                    raise invalid(f"tensor parsing error: {alias} ({e})") from None
            return inputs

        outputs = self.server.predict(version, signature, declared, materialise, list(request.output_filter))
        response = predict_pb2.PredictResponse()
        response.model_spec.name = request.model_spec.name
        response.model_spec.version.value = version.number
        response.model_spec.signature_name = signature.name
        for alias, value in outputs.items():
            response.outputs[alias].CopyFrom(tf.make_tensor_proto(value))
        return response

    def Predict(self, request, context):
        response, error = self.server.answer(request.model_spec.name, self._predict, request)
        _abort_on(context, error)
        return response

    def GetModelMetadata(self, request, context):
        response, error = self.server.answer(request.model_spec.name, self.server.registry.metadata, request.model_spec,
                                             list(request.metadata_field))
        _abort_on(context, error)
        return response


class ModelService(model_service_pb2_grpc.ModelServiceServicer):
    def __init__(self, server: LocalServer):
        self.server = server

    def GetModelStatus(self, request, context):
        response, error = self.server.answer(request.model_spec.name, self.server.registry.status, request.model_spec)
        _abort_on(context, error)
        return response

    def HandleReloadConfigRequest(self, request, context):
        """ModelService.HandleReloadConfigRequest: the request's ModelServerConfig replaces the served one."""
        response = model_management_pb2.ReloadConfigResponse()
        try:
            if request.config.WhichOneof("config") != "model_config_list":
                raise ValueError("only model_config_list is supported")
            self.server.registry.apply_config(list(request.config.model_config_list.config))
        except (ValueError, OSError) as error:
            response.status.error_code = grpc.StatusCode.INVALID_ARGUMENT.value[0]
            response.status.error_message = str(error)
        return response


# ---- gRPC health (grpc.health.v1.Health/Check, a local extension: probes for orchestrators) -------------------------
# The two messages are tiny, so they are read and written by hand rather than adding grpcio-health-checking:
# HealthCheckRequest {string service = 1}, HealthCheckResponse {ServingStatus status = 1}.
HEALTH_SERVING, HEALTH_NOT_SERVING = 1, 2


def _health_service(data: bytes) -> str:
    position = 0
    while position < len(data):
        key = data[position]
        position += 1
        if key & 7 != 2:   # the request has one length-delimited field; anything else is malformed
            raise ValueError("malformed HealthCheckRequest")
        length, shift = 0, 0
        while True:
            length |= (data[position] & 0x7F) << shift
            shift += 7
            position += 1
            if not data[position - 1] & 0x80:
                break
        if key >> 3 == 1:
            return data[position:position + length].decode("utf-8")
        position += length
    return ""


def health_handler(server: LocalServer):
    """"" is SERVING once every configured model has a version available (what TF Serving waits for before it opens
    its ports); a model name is SERVING while it has one; unknown names are NOT_FOUND (the health protocol)."""
    def check(service: str, context):
        available = server.registry.available()
        if service and service not in available:
            context.abort(grpc.StatusCode.NOT_FOUND, f"unknown service {service}")
        ready = available[service] if service else all(available.values())
        return HEALTH_SERVING if ready else HEALTH_NOT_SERVING

    return grpc.method_handlers_generic_handler("grpc.health.v1.Health", {
        "Check": grpc.unary_unary_rpc_method_handler(check, request_deserializer=_health_service,
                                                     response_serializer=lambda status: bytes([8, status]))})


# ---- REST ---------------------------------------------------------------------------------------------------------
# TF Serving's routes (model_servers/http_rest_api_handler.cc): case-insensitive; every other path under /v1/ is
# INVALID_ARGUMENT "Malformed request" (400), paths outside /v1/ have no handler (404)
_REST_PATH = re.compile(r"^/v1/models/([^/:]+)(?:/versions/(\d+)|/labels/([^/:]+))?"
                        r"(?::(predict|classify|regress)|/(metadata))?$", re.IGNORECASE)
_REST_ROOT = re.compile(r"^/v1/", re.IGNORECASE)
_JSON = "application/json"


def _version(text: str | None) -> int:
    """A version from the URL (digits only, by the route); ModelSpec holds an int64."""
    number = int(text or 0)
    if number > INT64_MAX:
        raise invalid(f"version {text} is out of range for int64")
    return number


def _strings(value):
    """JSON strings -> bytes; {"b64": ...} -> its decoded bytes (TF Serving's binary convention)."""
    if isinstance(value, list):
        return [_strings(v) for v in value]
    if isinstance(value, dict) and set(value) == {"b64"}:
        try:
            return base64.b64decode(value["b64"], validate=True)
        except (ValueError, TypeError):
            raise invalid("invalid base64 in a {\"b64\": ...} value") from None
    if isinstance(value, str):
        return value.encode("utf-8")
    raise invalid(f"expected a string or {{\"b64\": ...}}, got {type(value).__name__}")


def _json_shape(value) -> tuple:
    """The shape a JSON value declares: list lengths along the first elements (TF Serving's GetDenseTensorShape);
    ragged lists are refused later, when they are materialised."""
    shape = []
    while isinstance(value, list):
        shape.append(len(value))
        if not value:
            break
        value = value[0]
    return tuple(shape)


# the JSON leaf types json_tensor.cc accepts per dtype (rapidjson IsInt/IsNumber/IsBool): a bool is never a number,
# a fraction never an integer, a string never a number
_JSON_LEAVES = {"i": (int,), "u": (int,), "f": (int, float), "b": (bool,)}


def _json_text(value) -> tuple[str, str]:
    """(value as JSON, rapidjson's type name) for TF Serving's "JSON Value: ... Type: ..." message."""
    kind = {bool: "True" if value is True else "False", int: "Number", float: "Number", str: "String",
            dict: "Object", list: "Array", type(None): "Null"}.get(type(value), "Object")
    return json.dumps(value), kind


def _array(alias: str, value, spec) -> np.ndarray:
    """A JSON value as the signature input's dtype, typed as TF Serving's json_tensor.cc types it: every leaf must be
    of the JSON type the dtype takes (an integer for int32, a number for float, true/false for bool); 1.9, "1" or
    true for an int32 input is "JSON Value: ... Type: ... is not of expected type: int32", never converted.
    Integers out of the dtype's range are refused too (TF Serving would wrap them: a local difference)."""
    try:
        if spec.dtype == tf.string:
            strings = _strings(value)
            array = np.empty(np.shape(strings), dtype=object)
            array[...] = strings
            return array
        leaves = np.array(value, dtype=object)
    except (ValueError, TypeError, RecursionError) as e:
        raise invalid(f"input {alias!r} cannot be read as a {spec.dtype.name} tensor: {e}") from None
    target = np.dtype(spec.dtype.as_numpy_dtype)
    accepted = _JSON_LEAVES.get(target.kind, ())
    for leaf_type in set(map(type, leaves.flat)):
        if leaf_type not in accepted:
            leaf = next(v for v in leaves.flat if type(v) is leaf_type)
            text, kind = _json_text(leaf)
            raise invalid(f"JSON Value: {text} Type: {kind} is not of expected type: {spec.dtype.name} "
                          f"(input {alias!r})")
    if leaves.size and spec.dtype.is_integer:
        info = np.iinfo(target)
        low, high = min(leaves.flat), max(leaves.flat)
        if low < info.min or high > info.max:
            text, _ = _json_text(low if low < info.min else high)
            raise invalid(f"JSON Value: {text} Type: Number is not of expected type: {spec.dtype.name} "
                          f"(input {alias!r}: out of range)")
    return leaves.astype(target)


def _json_columns(body: dict, signature) -> tuple[dict, bool]:
    """({alias: JSON value}, row_format) from a predict body: "instances" (rows) or "inputs" (columns)."""
    if ("instances" in body) == ("inputs" in body):
        raise invalid('JSON body must have exactly one of "instances" (row format) or "inputs" (columnar format)')
    only = next(iter(signature.inputs)) if len(signature.inputs) == 1 else None
    if "instances" in body:
        rows = body["instances"]
        if not isinstance(rows, list) or not rows:
            raise invalid('"instances" must be a non-empty list')
        named = isinstance(rows[0], dict) and set(rows[0]) != {"b64"}
        if not named and only is None:
            raise invalid(f"each instance must be an object with the inputs {sorted(signature.inputs)}")
        try:
            columns = {k: [row[k] for row in rows] for k in rows[0]} if named else {only: rows}
        except (KeyError, TypeError):
            raise invalid("every instance must name the same inputs") from None
    else:
        columns = body["inputs"]
        if only is not None and not (isinstance(columns, dict) and set(columns) == {only}):
            columns = {only: columns}
        if not isinstance(columns, dict):
            raise invalid(f'"inputs" must be an object with the inputs {sorted(signature.inputs)}')
    return columns, "instances" in body


def _json_value(alias: str, value: np.ndarray):
    """Strings as text, `*_bytes` strings as {"b64": ...} (TF Serving's IsNamedTensorBytes), numbers as numbers."""
    if value.dtype == object:
        flat = [{"b64": base64.b64encode(v).decode()} if alias.endswith("_bytes") else v.decode("utf-8", "replace")
                for v in value.reshape(-1)]
        return np.array(flat, dtype=object).reshape(value.shape).tolist()
    return value.tolist()


def _json_outputs(outputs: dict, row_format: bool) -> dict:
    if not row_format:
        columns = {k: _json_value(k, v) for k, v in outputs.items()}
        return {"outputs": next(iter(columns.values())) if len(columns) == 1 else columns}
    sizes = {len(v) if v.ndim else None for v in outputs.values()}
    if None in sizes or len(sizes) != 1:
        raise invalid(f"outputs {sorted(outputs)} do not share a batch dimension; use the columnar format")
    size = sizes.pop()
    # one row = a one-row slice of every output, so each keeps its dtype (a string row is an object array too)
    rows = [{k: _json_value(k, v[i:i + 1])[0] for k, v in outputs.items()} for i in range(size)]
    return {"predictions": [next(iter(row.values())) for row in rows] if len(outputs) == 1 else rows}


class RestApp:
    """TF Serving's REST API (`/v1/models/...`, metrics) as a WSGI application, served by waitress."""

    def __init__(self, server: LocalServer):
        self.server = server

    def __call__(self, environ, start_response):
        status, payload, content_type = self.route(environ)
        body = payload.encode() if isinstance(payload, str) else json.dumps(payload).encode()
        start_response(f"{status} {HTTPStatus(status).phrase}",
                       [("Content-Type", content_type), ("Content-Length", str(len(body)))])
        return [body]

    def route(self, environ) -> tuple[int, object, str]:
        method, path = environ["REQUEST_METHOD"], environ.get("PATH_INFO", "")
        server = self.server
        if method == "GET" and server.metrics_path and path == server.metrics_path:
            return 200, server.metrics_text(), "text/plain; version=0.0.4"
        match = _REST_PATH.match(path)
        if not match or method != ("POST" if match.group(4) else "GET"):
            if not _REST_ROOT.match(path):
                return 404, {"error": f"no handler for {path}"}, _JSON
            return 400, {"error": f"Malformed request: {method} {path}"}, _JSON
        name, version, label, verb, metadata = match.groups()
        verb = verb and verb.lower()
        if verb in ("classify", "regress"):
            result, error = server.answer(name, lambda: refuse_by_method_name(
                server, model_spec(name, _rest_signature(environ), _version(version), label or ""),
                "classification" if verb == "classify" else "regression"))
        elif verb:
            if not environ.get("CONTENT_LENGTH"):   # waitress sets it for chunked bodies once they are read
                return 411, {"error": "a predict request needs a body with Content-Length or chunked encoding"}, _JSON
            body = environ["wsgi.input"].read(int(environ["CONTENT_LENGTH"]))
            result, error = server.answer(name, self._predict, name, version, label, body)
        elif metadata:
            result, error = server.answer(name, lambda: _metadata_json(
                server.registry.metadata(model_spec(name, "", _version(version), label or ""), ["signature_def"])))
        else:
            result, error = server.answer(name, lambda: json_format.MessageToDict(
                server.registry.status(model_spec(name, "", _version(version), label or "")),
                preserving_proto_field_name=True, always_print_fields_with_no_presence=True))
        if error is not None:
            return HTTP_STATUS.get(error.code, 500), {"error": error.message}, _JSON
        return 200, result, _JSON

    def _predict(self, name, version, label, body: bytes) -> dict:
        try:
            request = json.loads(body)
        except (ValueError, RecursionError) as e:   # RecursionError: JSON nested deeper than Python recurses
            raise invalid(f"JSON Parse error: {type(e).__name__}: {e}") from None
        if not isinstance(request, dict):
            raise invalid("JSON body must be an object")
        signature_name = request.get("signature_name", "")
        if not isinstance(signature_name, str):
            raise invalid("'signature_name' key must be a string value.")
        version_, signature = self.server.resolve(model_spec(name, signature_name, _version(version), label or ""))
        columns, row_format = _json_columns(request, signature)
        specs = signature.inputs
        declared = {k: (_json_shape(v), specs[k].dtype if k in specs else tf.string) for k, v in columns.items()}
        outputs = self.server.predict(version_, signature, declared,
                                      lambda: {k: _array(k, v, specs[k]) for k, v in columns.items()})
        return _json_outputs(outputs, row_format)


def _rest_signature(environ) -> str:
    """The signature_name of a classify/regress body, '' when absent or unreadable (the method check comes first)."""
    try:
        body = json.loads(environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0)) or b"{}")
    except (ValueError, RecursionError):
        return ""
    name = body.get("signature_name", "") if isinstance(body, dict) else ""
    return name if isinstance(name, str) else ""


def _metadata_json(response) -> dict:
    """GetModelMetadata as TF Serving's REST API prints it: model_spec with every field, then the SignatureDefMap
    unpacked under metadata.signature_def, with no "@type" of the Any that carries it over gRPC."""
    signature_map = get_model_metadata_pb2.SignatureDefMap()
    response.metadata["signature_def"].Unpack(signature_map)
    return {"model_spec": json_format.MessageToDict(response.model_spec, preserving_proto_field_name=True,
                                                    always_print_fields_with_no_presence=True),
            "metadata": {"signature_def": json_format.MessageToDict(signature_map, preserving_proto_field_name=True)}}


def read_metrics_path(monitoring_config: str) -> str:
    """The Prometheus path of TF Serving's monitoring.config (text MonitoringConfig), '' when disabled."""
    with open(monitoring_config, encoding="utf-8") as f:
        text = f.read()
    if not re.search(r"enable\s*:\s*true", text):
        return ""
    path = re.search(r'path\s*:\s*"([^"]+)"', text)
    return path.group(1) if path else "/monitoring/prometheus/metrics"


FLAGS = flags.FLAGS


def define_flags():
    """CLI flags, defined only when run as a program (the library modules import side by side)."""
    flags.DEFINE_string("model_config", None, "TF Serving ModelServerConfig text file (serving/models.config).")
    flags.DEFINE_string("host", "127.0.0.1", "Address to bind; 0.0.0.0 exposes the server to the network.")
    flags.DEFINE_integer("port", 8500, "gRPC port.")
    flags.DEFINE_integer("rest_port", 8501, "REST port (0: no REST API), as TF Serving's --rest_api_port.")
    flags.DEFINE_bool("enable_batching", False, "Batch concurrent requests (TF Serving's --enable_batching).")
    flags.DEFINE_string("batching_parameters_file", "", "TF Serving batching.config (default: BatchingParameters()).")
    flags.DEFINE_bool("enable_per_model_batching_parameters", False,
                      "Use the batching_params.pbtxt in each version directory (written by export) instead of "
                      "--batching_parameters_file for that model, as tensorflow_model_server does.")
    flags.DEFINE_enum("batching_mode", "strict", ["strict", "lenient"],
                      "strict: TF Serving's batching session (mixed shapes or one bad request fail the whole batch); "
                      "lenient (a local extension): group by shape, re-run a failed batch request by request.")
    flags.DEFINE_float("file_system_poll_wait_seconds", 1.0, "Seconds between scans for new versions (0: never).")
    flags.DEFINE_float("model_config_file_poll_wait_seconds", 0.0,
                       "Seconds between re-reads of --model_config (0: read once), as TF Serving's flag: label and "
                       "version policy edits apply without a restart.")
    flags.DEFINE_float("wait_for_models_seconds", 24 * 3600.0,
                       "Open no port until every configured model has a version (TF Serving waits forever); fail "
                       "after this long. 0: start at once.")
    flags.DEFINE_integer("max_message_bytes", MAX_MESSAGE_BYTES, "Largest request or response, gRPC and REST.")
    flags.DEFINE_integer("max_image_pixels", MAX_IMAGE_PIXELS, "Largest image (H x W) a request may carry or encode.")
    flags.DEFINE_string("monitoring_config_file", "", "TF Serving monitoring.config (Prometheus on the REST port).")
    flags.DEFINE_integer("max_request_rows", MAX_REQUEST_ROWS,
                         "Most rows (0th dimension) one request may declare; with batching also max_batch_size.")
    flags.DEFINE_integer("rest_read_timeout", REST_READ_TIMEOUT_SECONDS,
                         "Seconds a REST connection may stall mid-request or idle before it is closed.")


def main(argv):
    del argv
    batching = None
    if FLAGS.enable_batching:
        batching = (read_batching_config(FLAGS.batching_parameters_file, FLAGS.batching_mode)
                    if FLAGS.batching_parameters_file else BatchingParameters(mode=FLAGS.batching_mode))
    metrics = read_metrics_path(FLAGS.monitoring_config_file) if FLAGS.monitoring_config_file else ""
    server = LocalServer(FLAGS.model_config, FLAGS.host, FLAGS.port, FLAGS.rest_port or None, batching,
                         FLAGS.file_system_poll_wait_seconds, FLAGS.max_message_bytes, FLAGS.max_image_pixels,
                         metrics, max_request_rows=FLAGS.max_request_rows, rest_read_timeout=FLAGS.rest_read_timeout,
                         per_model_batching=FLAGS.enable_per_model_batching_parameters,
                         config_poll_seconds=FLAGS.model_config_file_poll_wait_seconds,
                         wait_for_models_seconds=FLAGS.wait_for_models_seconds)
    server.start()
    print(f"serving {sorted(server.registry.models)} on {server.host}: gRPC {server.port}, REST {server.rest_port}",
          flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        server.stop()


if __name__ == "__main__":
    define_flags()
    flags.mark_flag_as_required("model_config")
    app.run(main)
