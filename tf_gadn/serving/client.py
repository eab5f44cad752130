"""`python -m tf_gadn.client --server localhost:8500 --model gadn --image in.png --artist NAME --out out.png [--rest]`:
draws the content of in.png in an artist's style through a model server (BUILD.md, "Serving").

gRPC goes through tensorflow_serving.apis' PredictionService stubs and REST through TF Serving's documented JSON API,
so the same client works against the real tensorflow_model_server and against tf_gadn.serve. The image file's bytes
travel as they are (`image_bytes`, decoded and resized inside the model) and the answer is the model's PNG
(`png_bytes`), so the client needs no image library for PNG in and PNG out.
"""

from __future__ import annotations

import base64
import json
import urllib.error
import urllib.request

import grpc
import numpy as np
import tensorflow as tf
from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc

from tf_gadn.serving.protocol import MAX_MESSAGE_BYTES, model_spec


class ServerError(Exception):
    """A request the server refused: `status` is the gRPC code name (e.g. INVALID_ARGUMENT) or the HTTP status."""

    def __init__(self, status, message: str):
        super().__init__(f"{status}: {message}")
        self.status, self.message = status, message


class GrpcClient:
    def __init__(self, server: str, timeout: float = 60.0):
        options = [
            ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
            ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
        ]
        self.channel = grpc.insecure_channel(server, options=options)
        self.stub = prediction_service_pb2_grpc.PredictionServiceStub(self.channel)
        self.timeout = timeout

    def predict(
        self,
        model: str,
        signature: str,
        inputs: dict,
        version: int = 0,
        label: str = "",
        output_filter=(),
    ) -> dict:
        request = predict_pb2.PredictRequest(
            model_spec=model_spec(model, signature, version, label),
            output_filter=list(output_filter),
        )
        for alias, value in inputs.items():
            request.inputs[alias].CopyFrom(tf.make_tensor_proto(value))
        try:
            response = self.stub.Predict(request, timeout=self.timeout)
        except grpc.RpcError as error:
            raise ServerError(error.code().name, error.details()) from None
        return {alias: tf.make_ndarray(proto) for alias, proto in response.outputs.items()}

    def close(self):
        self.channel.close()


class RestClient:
    """TF Serving's REST predict API, columnar ("inputs") format; `*_bytes` tensors travel as {"b64": ...}."""

    def __init__(self, server: str, timeout: float = 60.0):
        self.base = server if server.startswith("http") else f"http://{server}"
        self.timeout = timeout

    @staticmethod
    def _json(alias: str, value: np.ndarray):
        if value.dtype == object or value.dtype.kind == "S":
            wrap = (
                (lambda b: {"b64": base64.b64encode(b).decode()})
                if alias.endswith("_bytes")
                else bytes.decode
            )
            return (
                np.array([wrap(bytes(v)) for v in value.reshape(-1)], dtype=object)
                .reshape(value.shape)
                .tolist()
            )
        return value.tolist()

    def predict(
        self,
        model: str,
        signature: str,
        inputs: dict,
        version: int = 0,
        label: str = "",
        output_filter=(),
    ) -> dict:
        path = f"/v1/models/{model}" + (
            f"/versions/{version}" if version else f"/labels/{label}" if label else ""
        )
        body = {
            "signature_name": signature,
            "inputs": {k: self._json(k, np.asarray(v)) for k, v in inputs.items()},
        }
        request = urllib.request.Request(
            self.base + path + ":predict",
            json.dumps(body).encode(),
            {"Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as reply:
                outputs = json.load(reply)["outputs"]
        except urllib.error.HTTPError as error:
            raise ServerError(error.code, json.load(error).get("error", "")) from None
        if not isinstance(outputs, dict):
            raise ServerError(
                200, "expected named outputs"
            )  # a single-output signature answers a bare value
        return {
            k: self._array(k, v)
            for k, v in outputs.items()
            if not output_filter or k in output_filter
        }

    @staticmethod
    def _array(alias: str, value):
        if alias.endswith("_bytes"):
            flat = np.asarray(value, dtype=object).reshape(-1)
            return np.array([base64.b64decode(v["b64"]) for v in flat], dtype=object)
        return np.asarray(value)


def transfer(
    client,
    model: str,
    image_bytes: bytes,
    artist: str = "",
    artist_id: int | None = None,
    version: int = 0,
    label: str = "",
    strength: float | None = None,
    keep_colors: bool = False,
    source_artist_id: int | None = None,
) -> bytes:
    """PNG of `image_bytes` (PNG/JPEG) drawn by `artist` (a name) or `artist_id` (an id). With `strength` (0: the
    image's own style, 1: the artist's, > 1 exaggerated) or `keep_colors` (L from the output, a and b from the
    image) it calls transfer_with_strength; GADN also needs the image's own artist, `source_artist_id`."""
    if artist_id is None:
        signature, inputs = (
            "transfer_encoded_by_name",
            {"artist": np.array([artist.encode()], dtype=object)},
        )
    else:
        signature, inputs = "transfer_encoded", {"artist_id": np.array([artist_id], np.int32)}
    if strength is not None or keep_colors:
        signature = signature.replace("transfer", "transfer_with_strength")
        inputs["strength"] = np.array([1.0 if strength is None else strength], np.float32)
        inputs["keep_colors"] = np.array([float(keep_colors)], np.float32)
        if source_artist_id is not None:
            inputs["source_artist_id"] = np.array([source_artist_id], np.int32)
    inputs["image_bytes"] = np.array([image_bytes], dtype=object)
    outputs = client.predict(model, signature, inputs, version, label, output_filter=["png_bytes"])
    return outputs["png_bytes"][0]
