"""Warm-up records, TF Serving's `assets.extra/tf_serving_warmup_requests` (servables/tensorflow/saved_model_warmup.cc):
a TFRecord file of PredictionLog protos that tensorflow_model_server replays on every load of a version, before the
version is marked AVAILABLE, so the first client request does not pay for graph optimisation, cuDNN autotuning and
memory growth on a GPU. Export writes one request per main signature (transfer at every allowed batch size, so each
batch shape the batching session forms is warm); the local server replays them as TF Serving does.
"""

from __future__ import annotations

import os
import time

import numpy as np
import tensorflow as tf
from tensorflow_serving.apis import model_pb2, predict_pb2, prediction_log_pb2

WARMUP_FILE = os.path.join("assets.extra", "tf_serving_warmup_requests")
MAX_RECORDS = (
    1000  # TF Serving refuses a warm-up file with more records (the version fails to load)
)


def example_requests(module, name: str, batch_sizes=(1,)) -> list[predict_pb2.PredictRequest]:
    """A request per main signature of a ServingModule, with valid inputs (artist 0, grey images at model size)."""
    size = module.image_size
    functions = module.functions()
    requests = []

    def request(signature, **inputs):
        message = predict_pb2.PredictRequest(
            model_spec=model_pb2.ModelSpec(name=name, signature_name=signature)
        )
        for alias, value in inputs.items():
            message.inputs[alias].CopyFrom(tf.make_tensor_proto(value))
        requests.append(message)

    grey = np.full((1, size, size, 3), 128, np.uint8)
    for batch in batch_sizes:
        request("transfer", image=np.repeat(grey, batch, 0), artist_id=np.zeros([batch], np.int32))
    request(
        "transfer_encoded",
        image_bytes=np.array([tf.io.encode_png(grey[0]).numpy()]),
        artist_id=np.zeros([1], np.int32),
    )
    generate_specs = functions["generate"][1]
    request(
        "generate",
        **{k: np.zeros([1, *spec.shape[1:]], np.float32) for k, spec in generate_specs.items()},
    )
    if "sample" in functions:  # StarGAN has no content distribution to sample from
        request("sample", artist_id=np.zeros([1], np.int32), seed=np.zeros([1], np.int64))
    return requests


def write(version_dir: str, requests) -> str:
    path = os.path.join(version_dir, WARMUP_FILE)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with tf.io.TFRecordWriter(path) as writer:
        for request in requests:
            writer.write(
                prediction_log_pb2.PredictionLog(
                    predict_log=prediction_log_pb2.PredictLog(request=request)
                ).SerializeToString()
            )
    return path


def read(version_dir: str) -> list[predict_pb2.PredictRequest]:
    """The Predict requests of a version's warm-up file ([] when it has none); more than MAX_RECORDS, or a log
    that is not a Predict one, is an error (tf_gadn exports only Predict signatures)."""
    path = os.path.join(version_dir, WARMUP_FILE)
    if not os.path.exists(path):
        return []
    requests = []
    for record in tf.data.TFRecordDataset(path).as_numpy_iterator():
        if len(requests) == MAX_RECORDS:
            raise ValueError(
                f"Number of warmup records exceeds the maximum ({MAX_RECORDS}) at {path}"
            )
        log = prediction_log_pb2.PredictionLog.FromString(record)
        if log.WhichOneof("log_type") != "predict_log":
            raise ValueError(
                f"warm-up record {len(requests)} of {path} is a {log.WhichOneof('log_type')}; only "
                "predict_log is supported"
            )
        requests.append(log.predict_log.request)
    return requests


def replay(version, requests) -> float:
    """Runs every request on the loaded version (once each, TF Serving's default num_request_iterations); a failing
    one fails the load, as in TF Serving. Returns the seconds it took."""
    start = time.perf_counter()
    for request in requests:
        signature = version.signature(request.model_spec.signature_name)
        signature.run({alias: tf.make_ndarray(proto) for alias, proto in request.inputs.items()})
    return time.perf_counter() - start
