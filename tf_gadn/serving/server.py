"""`python -m tf_gadn.serve --model_config serving/models.config --port 8500 --rest_port 8501`: a local server that
speaks TF Serving's gRPC API (PredictionService.Predict and GetModelMetadata, ModelService.GetModelStatus) and its REST
API (`/v1/models/<name>[/versions/<v>|/labels/<l>]:predict`, row and columnar formats; model status; metadata) over
the same `<base_path>/<version>/` directories (BUILD.md, "Serving").

Why: tensorflow_model_server cannot be installed on these machines, yet the client (tf_gadn.serving.client) must work
unchanged against the real server, so the API, the status codes and their messages are TF Serving's. Binds 127.0.0.1
unless told otherwise; caps message size, and the rows, bytes and image pixels a request *declares* before anything is
materialised (tf_gadn.serving.models.RequestLimits, image sizes read from raw headers by
tf_gadn.serving.image_headers); optionally batches concurrent requests as TF Serving does (tf_gadn.serving.batching,
strict by default); picks up new versions and config edits while running, loading each version in full (and
replaying its warm-up records) before the old one goes (tf_gadn.serving.models). REST runs on waitress, a production
WSGI server (listen backlog, read timeouts, Content-Length and chunked bodies), around the WSGI application of
tf_gadn.serving.rest.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import re
import threading
import time
from concurrent import futures

import grpc
import tensorflow as tf
from tensorflow_serving.apis import (
    model_management_pb2,
    model_service_pb2_grpc,
    predict_pb2,
    prediction_service_pb2_grpc,
)
from waitress import wasyncore
from waitress.server import create_server

from tf_gadn.serving.batching import Batcher, BatchingParameters
from tf_gadn.serving.image_headers import MAX_IMAGE_PIXELS
from tf_gadn.serving.models import (
    DEFAULT_SIGNATURE,
    ModelRegistry,
    RequestLimits,
    ServingError,
    invalid,
    tensor_declaration,
)
from tf_gadn.serving.protocol import MAX_MESSAGE_BYTES
from tf_gadn.serving.rest import RestApp

MAX_REQUEST_ROWS = (
    64  # rows per request without batching (with batching: max_batch_size, as TF Serving)
)
REST_BACKLOG = (
    1024  # listen backlog of the REST socket (waitress's default; the kernel caps it at somaxconn)
)
REST_THREADS = 16  # REST requests run concurrently (gRPC: grpc_workers)
REST_READ_TIMEOUT_SECONDS = (
    30  # a REST connection idle this long mid-request (or between requests) is closed
)
UNKNOWN_MODEL_LABEL = (
    "<unknown>"  # metrics label of every model name the config does not list (bounded labels)
)
METHOD_NAMES = {
    "classification": "tensorflow/serving/classify",
    "regression": "tensorflow/serving/regress",
}


class LocalServer:
    """The servers (gRPC and REST) around one ModelRegistry; port 0 picks a free port (read .port / .rest_port)."""

    def __init__(
        self,
        model_config: str,
        host: str = "127.0.0.1",
        port: int = 8500,
        rest_port: int | None = 8501,
        batching: BatchingParameters | None = None,
        poll_seconds: float = 1.0,
        max_message_bytes: int = MAX_MESSAGE_BYTES,
        max_image_pixels: int = MAX_IMAGE_PIXELS,
        metrics_path: str = "",
        grpc_workers: int = 64,
        max_request_rows: int = MAX_REQUEST_ROWS,
        rest_threads: int = REST_THREADS,
        rest_read_timeout: int = REST_READ_TIMEOUT_SECONDS,
        per_model_batching: bool = False,
        config_poll_seconds: float = 0.0,
        wait_for_models_seconds: float = 0.0,
    ):
        self.registry = ModelRegistry(model_config, poll_seconds, config_poll_seconds)
        self.wait_for_models_seconds = wait_for_models_seconds
        self.host, self.port, self.rest_port = host, port, rest_port
        self.batcher = Batcher(batching) if batching else None
        # with per-model batching parameters each version's own max_batch_size caps its rows (in the batcher)
        self.per_model_batching = per_model_batching
        rows = (
            min(max_request_rows, batching.max_batch_size)
            if batching and not per_model_batching
            else max_request_rows
        )
        self.limits = RequestLimits(rows, max_message_bytes, max_image_pixels)
        self.max_message_bytes = max_message_bytes
        self.metrics_path, self.grpc_workers = metrics_path, grpc_workers
        self.rest_threads, self.rest_read_timeout = rest_threads, rest_read_timeout
        self.counts: dict = {}  # (model, status) -> requests
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

    def refuse_by_method_name(self, spec, kind: str) -> None:
        """Classify and Regress (gRPC and REST) need a signature of that method; every exported signature is a
        Predict one, so TF Serving answers INVALID_ARGUMENT with its message (servables/tensorflow/classifier.cc,
        regressor.cc), after the model, version and signature were found."""
        version = self.registry.resolve(spec)
        name = spec.signature_name or DEFAULT_SIGNATURE
        if name not in version.signature_defs:
            raise invalid(f"No signature was found with the name: {name}")
        raise invalid(
            f"Expected {kind} signature method_name to be {METHOD_NAMES[kind]}. Was: "
            f"{version.signature_defs[name].method_name}"
        )

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
            lines = [
                f':tensorflow:serving:request_count{{model_name={json.dumps(m)},status="{s}"}} {n}'
                for (m, s), n in sorted(self.counts.items())
            ]
        for model in self.registry.models.values():
            for version in list(model.versions.values()):
                if version.warmup_requests:
                    lines.append(
                        f":tensorflow:serving:model_warmup_latency_sum{{model_path={json.dumps(version.path)}"
                        f',status="OK"}} {round(version.warmup_seconds * 1e6)}'
                    )
        if self.batcher is not None:
            lines += [
                f":tensorflow:serving:batching_session:processed_batch_size_count {self.batcher.batches}",
                f":tensorflow:serving:batching_session:processed_batch_size_sum {self.batcher.rows}",
                f":tensorflow:serving:batching_session:padding_size_sum {self.batcher.padding}",
            ]
        return "\n".join(lines) + "\n"

    # ---- lifecycle --------------------------------------------------------------------------------------------------
    def start(self) -> LocalServer:
        self.registry.start()
        self.wait_for_models()
        options = [
            ("grpc.max_receive_message_length", self.max_message_bytes),
            ("grpc.max_send_message_length", self.max_message_bytes),
        ]
        self._grpc = grpc.server(futures.ThreadPoolExecutor(self.grpc_workers), options=options)
        prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(
            PredictionService(self), self._grpc
        )
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
                RestApp(self),
                host=self.host,
                port=self.rest_port,
                threads=self.rest_threads,
                backlog=REST_BACKLOG,
                channel_timeout=self.rest_read_timeout,
                cleanup_interval=1,
                connection_limit=512,
                asyncore_use_poll=True,
                max_request_body_size=self.max_message_bytes + 1,
                ident="tf_gadn.serve",
            )
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
                http.trigger.pull_trigger(
                    lambda: wasyncore.close_all(http._map)
                )  # closed inside the event loop
            except (
                OSError
            ):  # the loop already closed its trigger (it has ended): close what is left from here
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


class PredictionService(prediction_service_pb2_grpc.PredictionServiceServicer):
    """Predict and GetModelMetadata; Classify and Regress fail as on TF Serving for Predict-only models
    (INVALID_ARGUMENT); MultiInference stays UNIMPLEMENTED."""

    def __init__(self, server: LocalServer):
        self.server = server

    def Classify(self, request, context):
        _, error = self.server.answer(
            request.model_spec.name,
            self.server.refuse_by_method_name,
            request.model_spec,
            "classification",
        )
        _abort_on(context, error)

    def Regress(self, request, context):
        _, error = self.server.answer(
            request.model_spec.name,
            self.server.refuse_by_method_name,
            request.model_spec,
            "regression",
        )
        _abort_on(context, error)

    def _predict(self, request):
        version, signature = self.server.resolve(request.model_spec)
        declared = {
            alias: tensor_declaration(alias, proto) for alias, proto in request.inputs.items()
        }

        def materialise():
            inputs = {}
            for alias, proto in request.inputs.items():
                try:
                    inputs[alias] = tf.make_ndarray(proto)
                except (TypeError, ValueError) as e:
                    raise invalid(f"tensor parsing error: {alias} ({e})") from None
            return inputs

        outputs = self.server.predict(
            version, signature, declared, materialise, list(request.output_filter)
        )
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
        response, error = self.server.answer(
            request.model_spec.name,
            self.server.registry.metadata,
            request.model_spec,
            list(request.metadata_field),
        )
        _abort_on(context, error)
        return response


class ModelService(model_service_pb2_grpc.ModelServiceServicer):
    def __init__(self, server: LocalServer):
        self.server = server

    def GetModelStatus(self, request, context):
        response, error = self.server.answer(
            request.model_spec.name, self.server.registry.status, request.model_spec
        )
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
        if key & 7 != 2:  # the request has one length-delimited field; anything else is malformed
            raise ValueError("malformed HealthCheckRequest")
        length, shift = 0, 0
        while True:
            length |= (data[position] & 0x7F) << shift
            shift += 7
            position += 1
            if not data[position - 1] & 0x80:
                break
        if key >> 3 == 1:
            return data[position : position + length].decode("utf-8")
        position += length
    return ""


def health_handler(server: LocalServer):
    """ "" is SERVING once every configured model has a version available (what TF Serving waits for before it opens
    its ports); a model name is SERVING while it has one; unknown names are NOT_FOUND (the health protocol)."""

    def check(service: str, context):
        available = server.registry.available()
        if service and service not in available:
            context.abort(grpc.StatusCode.NOT_FOUND, f"unknown service {service}")
        ready = available[service] if service else all(available.values())
        return HEALTH_SERVING if ready else HEALTH_NOT_SERVING

    return grpc.method_handlers_generic_handler(
        "grpc.health.v1.Health",
        {
            "Check": grpc.unary_unary_rpc_method_handler(
                check,
                request_deserializer=_health_service,
                response_serializer=lambda status: bytes([8, status]),
            )
        },
    )


# ---- REST (the WSGI application and its JSON codec: tf_gadn.serving.rest) ---------------------------------------------
def read_metrics_path(monitoring_config: str) -> str:
    """The Prometheus path of TF Serving's monitoring.config (text MonitoringConfig), '' when disabled."""
    with open(monitoring_config, encoding="utf-8") as f:
        text = f.read()
    if not re.search(r"enable\s*:\s*true", text):
        return ""
    path = re.search(r'path\s*:\s*"([^"]+)"', text)
    return path.group(1) if path else "/monitoring/prometheus/metrics"
