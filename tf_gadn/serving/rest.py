"""TF Serving's REST API as a WSGI application (served by waitress in tf_gadn.serving.server): the routes
`/v1/models/<name>[/versions/<v>|/labels/<l>][:predict|:classify|:regress|/metadata]` and the metrics path, and the JSON codec of
predict requests and answers (row and columnar formats, {"b64": ...} for bytes), with TF Serving's HTTP status for
every gRPC status code. The server object it is given does the rest (model lookup, limits, batching, prediction)."""

from __future__ import annotations

import base64
import json
import re
from http import HTTPStatus
from typing import TYPE_CHECKING

import grpc
import numpy as np
import tensorflow as tf
from google.protobuf import json_format
from tensorflow_serving.apis import get_model_metadata_pb2

from tf_gadn.serving.models import INT64_MAX, invalid
from tf_gadn.serving.protocol import model_spec

if TYPE_CHECKING:  # the server imports this module, not the other way round
    from tf_gadn.serving.server import LocalServer

# TF Serving's mapping of status codes to HTTP (model_servers/http_server.cc)
HTTP_STATUS = {
    grpc.StatusCode.INVALID_ARGUMENT: 400,
    grpc.StatusCode.FAILED_PRECONDITION: 400,
    grpc.StatusCode.OUT_OF_RANGE: 400,
    grpc.StatusCode.NOT_FOUND: 404,
    grpc.StatusCode.UNIMPLEMENTED: 501,
    grpc.StatusCode.UNAVAILABLE: 503,
    grpc.StatusCode.RESOURCE_EXHAUSTED: 429,
    grpc.StatusCode.DEADLINE_EXCEEDED: 504,
    grpc.StatusCode.PERMISSION_DENIED: 403,
}


# TF Serving's routes (model_servers/http_rest_api_handler.cc): case-insensitive; every other path under /v1/ is
# INVALID_ARGUMENT "Malformed request" (400), paths outside /v1/ have no handler (404)
_REST_PATH = re.compile(
    r"^/v1/models/([^/:]+)(?:/versions/(\d+)|/labels/([^/:]+))?"
    r"(?::(predict|classify|regress)|/(metadata))?$",
    re.IGNORECASE,
)
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
            raise invalid('invalid base64 in a {"b64": ...} value') from None
    if isinstance(value, str):
        return value.encode("utf-8")
    raise invalid(f'expected a string or {{"b64": ...}}, got {type(value).__name__}')


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
    kind = {
        bool: "True" if value is True else "False",
        int: "Number",
        float: "Number",
        str: "String",
        dict: "Object",
        list: "Array",
        type(None): "Null",
    }.get(type(value), "Object")
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
        raise invalid(
            f"input {alias!r} cannot be read as a {spec.dtype.name} tensor: {e}"
        ) from None
    target = np.dtype(spec.dtype.as_numpy_dtype)
    accepted = _JSON_LEAVES.get(target.kind, ())
    for leaf_type in set(map(type, leaves.flat)):
        if leaf_type not in accepted:
            leaf = next(v for v in leaves.flat if type(v) is leaf_type)
            text, kind = _json_text(leaf)
            raise invalid(
                f"JSON Value: {text} Type: {kind} is not of expected type: {spec.dtype.name} "
                f"(input {alias!r})"
            )
    if leaves.size and spec.dtype.is_integer:
        info = np.iinfo(target)
        low, high = min(leaves.flat), max(leaves.flat)
        if low < info.min or high > info.max:
            text, _ = _json_text(low if low < info.min else high)
            raise invalid(
                f"JSON Value: {text} Type: Number is not of expected type: {spec.dtype.name} "
                f"(input {alias!r}: out of range)"
            )
    return leaves.astype(target)


def _json_columns(body: dict, signature) -> tuple[dict, bool]:
    """({alias: JSON value}, row_format) from a predict body: "instances" (rows) or "inputs" (columns)."""
    if ("instances" in body) == ("inputs" in body):
        raise invalid(
            'JSON body must have exactly one of "instances" (row format) or "inputs" (columnar format)'
        )
    only = next(iter(signature.inputs)) if len(signature.inputs) == 1 else None
    if "instances" in body:
        rows = body["instances"]
        if not isinstance(rows, list) or not rows:
            raise invalid('"instances" must be a non-empty list')
        named = isinstance(rows[0], dict) and set(rows[0]) != {"b64"}
        if not named and only is None:
            raise invalid(
                f"each instance must be an object with the inputs {sorted(signature.inputs)}"
            )
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
        flat = [
            {"b64": base64.b64encode(v).decode()}
            if alias.endswith("_bytes")
            else v.decode("utf-8", "replace")
            for v in value.reshape(-1)
        ]
        return np.array(flat, dtype=object).reshape(value.shape).tolist()
    return value.tolist()


def _json_outputs(outputs: dict, row_format: bool) -> dict:
    if not row_format:
        columns = {k: _json_value(k, v) for k, v in outputs.items()}
        return {"outputs": next(iter(columns.values())) if len(columns) == 1 else columns}
    sizes = {len(v) if v.ndim else None for v in outputs.values()}
    if None in sizes or len(sizes) != 1:
        raise invalid(
            f"outputs {sorted(outputs)} do not share a batch dimension; use the columnar format"
        )
    size = sizes.pop()
    # one row = a one-row slice of every output, so each keeps its dtype (a string row is an object array too)
    rows = [{k: _json_value(k, v[i : i + 1])[0] for k, v in outputs.items()} for i in range(size)]
    return {
        "predictions": [next(iter(row.values())) for row in rows] if len(outputs) == 1 else rows
    }


class RestApp:
    """TF Serving's REST API (`/v1/models/...`, metrics) as a WSGI application, served by waitress."""

    def __init__(self, server: LocalServer):
        self.server = server

    def __call__(self, environ, start_response):
        status, payload, content_type = self.route(environ)
        body = payload.encode() if isinstance(payload, str) else json.dumps(payload).encode()
        start_response(
            f"{status} {HTTPStatus(status).phrase}",
            [("Content-Type", content_type), ("Content-Length", str(len(body)))],
        )
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
            result, error = server.answer(
                name,
                lambda: server.refuse_by_method_name(
                    model_spec(name, _rest_signature(environ), _version(version), label or ""),
                    "classification" if verb == "classify" else "regression",
                ),
            )
        elif verb:
            if not environ.get(
                "CONTENT_LENGTH"
            ):  # waitress sets it for chunked bodies once they are read
                return (
                    411,
                    {
                        "error": "a predict request needs a body with Content-Length or chunked encoding"
                    },
                    _JSON,
                )
            body = environ["wsgi.input"].read(int(environ["CONTENT_LENGTH"]))
            result, error = server.answer(name, self._predict, name, version, label, body)
        elif metadata:
            result, error = server.answer(
                name,
                lambda: _metadata_json(
                    server.registry.metadata(
                        model_spec(name, "", _version(version), label or ""), ["signature_def"]
                    )
                ),
            )
        else:
            result, error = server.answer(
                name,
                lambda: json_format.MessageToDict(
                    server.registry.status(model_spec(name, "", _version(version), label or "")),
                    preserving_proto_field_name=True,
                    always_print_fields_with_no_presence=True,
                ),
            )
        if error is not None:
            return HTTP_STATUS.get(error.code, 500), {"error": error.message}, _JSON
        return 200, result, _JSON

    def _predict(self, name, version, label, body: bytes) -> dict:
        try:
            request = json.loads(body)
        except (
            ValueError,
            RecursionError,
        ) as e:  # RecursionError: JSON nested deeper than Python recurses
            raise invalid(f"JSON Parse error: {type(e).__name__}: {e}") from None
        if not isinstance(request, dict):
            raise invalid("JSON body must be an object")
        signature_name = request.get("signature_name", "")
        if not isinstance(signature_name, str):
            raise invalid("'signature_name' key must be a string value.")
        version_, signature = self.server.resolve(
            model_spec(name, signature_name, _version(version), label or "")
        )
        columns, row_format = _json_columns(request, signature)
        specs = signature.inputs
        declared = {
            k: (_json_shape(v), specs[k].dtype if k in specs else tf.string)
            for k, v in columns.items()
        }
        outputs = self.server.predict(
            version_,
            signature,
            declared,
            lambda: {k: _array(k, v, specs[k]) for k, v in columns.items()},
        )
        return _json_outputs(outputs, row_format)


def _rest_signature(environ) -> str:
    """The signature_name of a classify/regress body, '' when absent or unreadable (the method check comes first)."""
    try:
        body = json.loads(
            environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0)) or b"{}"
        )
    except (ValueError, RecursionError):
        return ""
    name = body.get("signature_name", "") if isinstance(body, dict) else ""
    return name if isinstance(name, str) else ""


def _metadata_json(response) -> dict:
    """GetModelMetadata as TF Serving's REST API prints it: model_spec with every field, then the SignatureDefMap
    unpacked under metadata.signature_def, with no "@type" of the Any that carries it over gRPC."""
    signature_map = get_model_metadata_pb2.SignatureDefMap()
    response.metadata["signature_def"].Unpack(signature_map)
    return {
        "model_spec": json_format.MessageToDict(
            response.model_spec,
            preserving_proto_field_name=True,
            always_print_fields_with_no_presence=True,
        ),
        "metadata": {
            "signature_def": json_format.MessageToDict(
                signature_map, preserving_proto_field_name=True
            )
        },
    }
