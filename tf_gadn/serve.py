"""`python -m tf_gadn.serve --model_config serving/models.config --port 8500 --rest_port 8501`: a local server that
speaks TF Serving's gRPC API (PredictionService.Predict and GetModelMetadata, ModelService.GetModelStatus) and its REST
API (`/v1/models/<name>[/versions/<v>|/labels/<l>]:predict`, row and columnar formats; model status; metadata) over
the same `<base_path>/<version>/` directories (DESIGN.md "Export and serving").

Why: tensorflow_model_server cannot be installed on these machines, yet the client (tf_gadn.client) must work
unchanged against the real server, so the API, the status codes and their messages are TF Serving's. Binds 127.0.0.1
unless told otherwise, caps message size and decoded image size, optionally batches concurrent requests
(tf_gadn.serving_batching), and picks up new versions while running (tf_gadn.serving_models).
"""
from __future__ import annotations

import base64
import json
import logging
import re
import threading
import time
from concurrent import futures
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import grpc
import numpy as np
import tensorflow as tf
from absl import app, flags
from google.protobuf import json_format
from tensorflow_serving.apis import model_service_pb2_grpc, predict_pb2, prediction_service_pb2_grpc

from tf_gadn.client import MAX_MESSAGE_BYTES, model_spec
from tf_gadn.serving_batching import Batcher, BatchingParameters, read_batching_config
from tf_gadn.serving_models import ModelRegistry, ServingError, invalid

MAX_IMAGE_PIXELS = 4096 * 4096
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
                 metrics_path: str = "", grpc_workers: int = 64):
        self.registry = ModelRegistry(model_config, poll_seconds)
        self.host, self.port, self.rest_port = host, port, rest_port
        self.batcher = Batcher(batching) if batching else None
        self.max_message_bytes, self.max_image_pixels = max_message_bytes, max_image_pixels
        self.metrics_path, self.grpc_workers = metrics_path, grpc_workers
        self.counts: dict = {}   # (model, status) -> requests
        self.count_lock = threading.Lock()
        self._grpc = self._http = None

    # ---- the one predict path of both APIs --------------------------------------------------------------------------
    def resolve(self, spec):
        version = self.registry.resolve(spec)
        return version, version.signature(spec.signature_name)

    def predict(self, version, signature, inputs: dict, output_filter=()) -> dict:
        signature.check(inputs, self.max_image_pixels, output_filter)
        if self.batcher is not None:
            key = (version.path, signature.name)
            outputs = self.batcher.run(key, signature.run, inputs)
        else:
            outputs = signature.run(inputs)
        return {k: outputs[k] for k in (output_filter or outputs)}

    def answer(self, model_name: str, handler, *args):
        """Runs a handler; returns (result, None) or (None, ServingError) and counts the outcome per model."""
        try:
            result, error = handler(*args), None
        except ServingError as e:
            result, error = None, e
        except Exception as e:  # noqa: BLE001 - a bug must not take the server down; reported as INTERNAL
            logging.exception("internal error")
            result, error = None, ServingError(grpc.StatusCode.INTERNAL, f"{type(e).__name__}: {e}")
        with self.count_lock:
            key = (model_name, error.code.name if error else "OK")
            self.counts[key] = self.counts.get(key, 0) + 1
        return result, error

    def metrics_text(self) -> str:
        with self.count_lock:
            lines = [f':tensorflow:serving:request_count{{model_name="{m}",status="{s}"}} {n}'
                     for (m, s), n in sorted(self.counts.items())]
        if self.batcher is not None:
            lines += [f":tensorflow:serving:batching_session:processed_batch_size_count {self.batcher.batches}",
                      f":tensorflow:serving:batching_session:processed_batch_size_sum {self.batcher.rows}"]
        return "\n".join(lines) + "\n"

    # ---- lifecycle --------------------------------------------------------------------------------------------------
    def start(self) -> "LocalServer":
        self.registry.start()
        options = [("grpc.max_receive_message_length", self.max_message_bytes),
                   ("grpc.max_send_message_length", self.max_message_bytes)]
        self._grpc = grpc.server(futures.ThreadPoolExecutor(self.grpc_workers), options=options)
        prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(PredictionService(self), self._grpc)
        model_service_pb2_grpc.add_ModelServiceServicer_to_server(ModelService(self), self._grpc)
        bound = self._grpc.add_insecure_port(f"{self.host}:{self.port}")
        if not bound:
            raise OSError(f"cannot bind gRPC to {self.host}:{self.port}")
        self.port = bound
        self._grpc.start()
        if self.rest_port is not None:
            self._http = ThreadingHTTPServer((self.host, self.rest_port), rest_handler(self))
            self._http.daemon_threads = True
            self.rest_port = self._http.server_address[1]
            threading.Thread(target=self._http.serve_forever, name="rest", daemon=True).start()
        return self

    def stop(self) -> None:
        if self._http is not None:
            self._http.shutdown()
            self._http.server_close()
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


class PredictionService(prediction_service_pb2_grpc.PredictionServiceServicer):
    """Predict and GetModelMetadata; Classify, Regress and MultiInference stay UNIMPLEMENTED (no such signatures)."""

    def __init__(self, server: LocalServer):
        self.server = server

    def _predict(self, request):
        version, signature = self.server.resolve(request.model_spec)
        inputs = {}
        for alias, proto in request.inputs.items():
            try:
                inputs[alias] = tf.make_ndarray(proto)
            except (TypeError, ValueError) as e:
                raise invalid(f"tensor parsing error: {alias} ({e})") from None
        outputs = self.server.predict(version, signature, inputs, list(request.output_filter))
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


# ---- REST ---------------------------------------------------------------------------------------------------------
_REST_PATH = re.compile(r"^/v1/models/([^/:]+)(?:/versions/(\d+)|/labels/([^/:]+))?(?::(predict)|/(metadata))?$")


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


def _array(alias: str, value, spec) -> np.ndarray:
    """A JSON value as the signature input's dtype (JSON carries no dtypes; TF Serving converts the same way)."""
    try:
        if spec.dtype == tf.string:
            strings = _strings(value)
            array = np.empty(np.shape(strings), dtype=object)
            array[...] = strings
            return array
        return np.asarray(value, dtype=spec.dtype.as_numpy_dtype)
    except (ValueError, TypeError, OverflowError) as e:
        raise invalid(f"input {alias!r} cannot be read as a {spec.dtype.name} tensor: {e}") from None


def _json_inputs(body: dict, signature) -> tuple[dict, bool]:
    """({alias: array}, row_format) from a predict body: "instances" (rows) or "inputs" (columns)."""
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
    return {k: _array(k, v, signature.inputs[k]) if k in signature.inputs else np.asarray(v, dtype=object)
            for k, v in columns.items()}, "instances" in body


def _json_value(alias: str, value: np.ndarray):
    if value.dtype == object:
        flat = [{"b64": base64.b64encode(v).decode()} if alias.endswith("_bytes") else v.decode("utf-8", "replace")
                for v in value.reshape(-1)]
        return np.array(flat, dtype=object).reshape(value.shape).tolist()
    return value.tolist()


def _json_outputs(outputs: dict, row_format: bool) -> dict:
    if not row_format:
        columns = {k: _json_value(k, v) for k, v in outputs.items()}
        return {"outputs": next(iter(columns.values())) if len(columns) == 1 else columns}
    names = list(outputs)
    size = len(next(iter(outputs.values())))
    rows = [{k: _json_value(k, outputs[k][i]) for k in names} for i in range(size)]
    return {"predictions": [row[names[0]] for row in rows] if len(names) == 1 else rows}


def rest_handler(server: LocalServer):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args):   # the tests and benchmarks would drown in access logs
            pass

        def _send(self, status: int, payload, content_type="application/json"):
            body = payload.encode() if isinstance(payload, str) else json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def _reply(self, model_name, handler, *args):
            result, error = server.answer(model_name, handler, *args)
            if error is not None:
                self._send(HTTP_STATUS.get(error.code, 500), {"error": error.message})
            else:
                self._send(200, result)

        def do_GET(self):
            if server.metrics_path and self.path == server.metrics_path:
                return self._send(200, server.metrics_text(), "text/plain; version=0.0.4")
            match = _REST_PATH.match(self.path)
            if not match or match.group(4):
                return self._send(404, {"error": f"Malformed request: GET {self.path}"})
            name, version, label, _, metadata = match.groups()
            spec = model_spec(name, "", int(version or 0), label or "")
            if metadata:
                return self._reply(name, lambda: json_format.MessageToDict(
                    server.registry.metadata(spec, ["signature_def"]), preserving_proto_field_name=True))
            self._reply(name, lambda: json_format.MessageToDict(
                server.registry.status(spec), preserving_proto_field_name=True, always_print_fields_with_no_presence=True))

        def do_POST(self):
            match = _REST_PATH.match(self.path)
            length = int(self.headers.get("Content-Length") or 0)
            if length > server.max_message_bytes:
                self.close_connection = True
                limit = server.max_message_bytes
                return self._send(HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
                                  {"error": f"request of {length} bytes exceeds the limit of {limit}"})
            body = self.rfile.read(length)
            if not match or not match.group(4):
                return self._send(404, {"error": f"Malformed request: POST {self.path}"})
            name, version, label = match.group(1), match.group(2), match.group(3)
            self._reply(name, self._predict, name, version, label, body)

        def _predict(self, name, version, label, body):
            try:
                request = json.loads(body)
            except (ValueError, UnicodeDecodeError) as e:
                raise invalid(f"JSON Parse error: {e}") from None
            if not isinstance(request, dict):
                raise invalid("JSON body must be an object")
            signature_name = request.get("signature_name", "")
            if not isinstance(signature_name, str):
                raise invalid("'signature_name' key must be a string value.")
            version_, signature = server.resolve(model_spec(name, signature_name, int(version or 0), label or ""))
            inputs, row_format = _json_inputs(request, signature)
            return _json_outputs(server.predict(version_, signature, inputs), row_format)

    return Handler


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
    flags.DEFINE_float("file_system_poll_wait_seconds", 1.0, "Seconds between scans for new versions (0: never).")
    flags.DEFINE_integer("max_message_bytes", MAX_MESSAGE_BYTES, "Largest request or response, gRPC and REST.")
    flags.DEFINE_integer("max_image_pixels", MAX_IMAGE_PIXELS, "Largest image (H x W) a request may carry or encode.")
    flags.DEFINE_string("monitoring_config_file", "", "TF Serving monitoring.config (Prometheus on the REST port).")


def main(argv):
    del argv
    batching = None
    if FLAGS.enable_batching:
        batching = (read_batching_config(FLAGS.batching_parameters_file) if FLAGS.batching_parameters_file
                    else BatchingParameters())
    metrics = read_metrics_path(FLAGS.monitoring_config_file) if FLAGS.monitoring_config_file else ""
    server = LocalServer(FLAGS.model_config, FLAGS.host, FLAGS.port, FLAGS.rest_port or None, batching,
                         FLAGS.file_system_poll_wait_seconds, FLAGS.max_message_bytes, FLAGS.max_image_pixels, metrics)
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
