"""The local TF-Serving-compatible server, driven over real localhost sockets by the client and by raw predict_pb2
requests: round trips (gRPC, REST rows and columns), every bad-request status, hot-loading a new version, load."""

import concurrent.futures
import io
import json
import os
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request

import grpc
import numpy as np
import pytest
import tensorflow as tf
from PIL import Image
from tensorflow_serving.apis import (
    get_model_metadata_pb2,
    get_model_status_pb2,
    model_service_pb2_grpc,
    predict_pb2,
    prediction_service_pb2_grpc,
)

from tf_gadn.data.prepare import encode_png
from tf_gadn.serving import client
from tf_gadn.serving import server as serve
from tf_gadn.serving.batching import BatchingParameters, read_batching_config
from tf_gadn.serving.models import read_model_config

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MAX_IMAGE_PIXELS = 64 * 64
CONFIG = """model_config_list {
  config { name: "gadn" base_path: "exports/gadn" model_platform: "tensorflow"
           model_version_policy { latest { num_versions: 2 } }
           version_labels { key: "stable" value: 1 } }
}
"""


@pytest.fixture(scope="module")
def server(tiny_gadn_export, tmp_path_factory):
    """A batching server on free localhost ports over a private copy of the exported model (tests add versions)."""
    root = tmp_path_factory.mktemp("serving")
    shutil.copytree(tiny_gadn_export, root / "exports")
    (root / "models.config").write_text(CONFIG)  # base_path relative to the config file
    with serve.LocalServer(
        str(root / "models.config"),
        port=0,
        rest_port=0,
        poll_seconds=0.2,
        batching=BatchingParameters(max_batch_size=8, batch_timeout_micros=5000),
        max_message_bytes=1 << 20,
        max_image_pixels=MAX_IMAGE_PIXELS,
        metrics_path="/monitoring/prometheus/metrics",
    ) as running:
        yield running


@pytest.fixture(scope="module")
def stub(server):
    with grpc.insecure_channel(f"127.0.0.1:{server.port}") as channel:
        yield prediction_service_pb2_grpc.PredictionServiceStub(channel)


def png(seed=0, size=(40, 48)):
    return encode_png(np.random.default_rng(seed).integers(0, 256, (*size, 3)).astype(np.uint8))


def request(signature="transfer", model="gadn", version=0, label="", **inputs):
    message = predict_pb2.PredictRequest(
        model_spec=client.model_spec(model, signature, version, label)
    )
    for alias, value in inputs.items():
        message.inputs[alias].CopyFrom(tf.make_tensor_proto(value))
    return message


def good_request():
    return request(image=np.zeros((1, 32, 32, 3), np.uint8), artist_id=np.array([1], np.int32))


def test_transfer_round_trip_grpc_and_rest(server):
    image = png()
    via_grpc = client.transfer(
        client.GrpcClient(f"127.0.0.1:{server.port}"), "gadn", image, artist="artist_02"
    )
    via_rest = client.transfer(
        client.RestClient(f"127.0.0.1:{server.rest_port}"),
        "gadn",
        image,
        artist_id=2,
        label="stable",
    )
    assert via_grpc == via_rest
    assert Image.open(io.BytesIO(via_grpc)).size == (32, 32)


def test_client_cli(server, tmp_path):
    (tmp_path / "in.png").write_bytes(png(1))
    subprocess.run(
        [
            sys.executable,
            "-m",
            "tf_gadn.client",
            f"--server=127.0.0.1:{server.port}",
            "--model=gadn",
            f"--image={tmp_path / 'in.png'}",
            "--artist=artist_01",
            f"--out={tmp_path / 'out.png'}",
        ],
        check=True,
        cwd=REPO,
        capture_output=True,
    )
    assert np.asarray(Image.open(tmp_path / "out.png")).shape == (32, 32, 3)


def test_rest_row_and_columnar_formats(server):
    url = f"http://127.0.0.1:{server.rest_port}/v1/models/gadn/versions/1:predict"
    x = np.random.default_rng(2).integers(0, 256, (2, 32, 32, 3)).tolist()

    def post(body):
        data = json.dumps(body).encode()
        return json.load(urllib.request.urlopen(urllib.request.Request(url, data), timeout=30))

    rows = post({"instances": [{"image": x[0], "artist_id": 0}, {"image": x[1], "artist_id": 3}]})[
        "predictions"
    ]
    columns = post({"signature_name": "transfer", "inputs": {"image": x, "artist_id": [0, 3]}})[
        "outputs"
    ]
    np.testing.assert_array_equal(np.array(rows), np.array(columns))
    assert np.array(columns).shape == (2, 32, 32, 3)
    status = json.load(
        urllib.request.urlopen(f"http://127.0.0.1:{server.rest_port}/v1/models/gadn/versions/1")
    )
    assert status["model_version_status"][0]["state"] == "AVAILABLE"


BIG = png(size=(100, 100))  # a valid image whose header alone exceeds MAX_IMAGE_PIXELS
BAD_REQUESTS = {
    "unknown model": (
        request(
            model="nope",
            image=np.zeros((1, 32, 32, 3), np.uint8),
            artist_id=np.array([0], np.int32),
        ),
        grpc.StatusCode.NOT_FOUND,
    ),
    "unknown version": (
        request(
            version=7, image=np.zeros((1, 32, 32, 3), np.uint8), artist_id=np.array([0], np.int32)
        ),
        grpc.StatusCode.NOT_FOUND,
    ),
    # TF Serving answers these two with INVALID_ARGUMENT / FAILED_PRECONDITION, not NOT_FOUND (see BUILD.md)
    "unknown label": (
        request(
            label="nightly",
            image=np.zeros((1, 32, 32, 3), np.uint8),
            artist_id=np.array([0], np.int32),
        ),
        grpc.StatusCode.INVALID_ARGUMENT,
    ),
    "unknown signature": (
        request("paint", image=np.zeros((1, 32, 32, 3), np.uint8)),
        grpc.StatusCode.FAILED_PRECONDITION,
    ),
    "wrong dtype": (
        request(image=np.zeros((1, 32, 32, 3), np.float32), artist_id=np.array([0], np.int32)),
        grpc.StatusCode.INVALID_ARGUMENT,
    ),
    "wrong shape": (
        request(image=np.zeros((1, 32, 32), np.uint8), artist_id=np.array([0], np.int32)),
        grpc.StatusCode.INVALID_ARGUMENT,
    ),
    "missing input": (
        request(image=np.zeros((1, 32, 32, 3), np.uint8)),
        grpc.StatusCode.INVALID_ARGUMENT,
    ),
    "artist id out of range": (
        request(image=np.zeros((1, 32, 32, 3), np.uint8), artist_id=np.array([4], np.int32)),
        grpc.StatusCode.INVALID_ARGUMENT,
    ),
    "unknown artist name": (
        request(
            "transfer_by_name",
            image=np.zeros((1, 32, 32, 3), np.uint8),
            artist=np.array([b"nobody"]),
        ),
        grpc.StatusCode.INVALID_ARGUMENT,
    ),
    "undecodable image": (
        request(
            "transfer_encoded",
            image_bytes=np.array([b"\x89PNG garbage"]),
            artist_id=np.array([0], np.int32),
        ),
        grpc.StatusCode.INVALID_ARGUMENT,
    ),
    "image too large": (
        request("transfer_encoded", image_bytes=np.array([BIG]), artist_id=np.array([0], np.int32)),
        grpc.StatusCode.INVALID_ARGUMENT,
    ),
    "message too large": (
        request(image=np.zeros((1, 600, 600, 3), np.uint8), artist_id=np.array([0], np.int32)),
        grpc.StatusCode.RESOURCE_EXHAUSTED,
    ),
}


@pytest.mark.parametrize("case", list(BAD_REQUESTS))
def test_bad_request_gets_its_status_and_server_keeps_serving(server, stub, case):
    bad, code = BAD_REQUESTS[case]
    with pytest.raises(grpc.RpcError) as error:
        stub.Predict(bad, timeout=30)
    assert error.value.code() == code, error.value.details()
    assert error.value.details()
    assert stub.Predict(good_request(), timeout=30).outputs["image"].tensor_shape.dim[1].size == 32


def test_rest_errors_use_tf_serving_http_codes(server):
    base = f"http://127.0.0.1:{server.rest_port}/v1/models"
    cases = [
        ("nope:predict", {"instances": [[0]]}, 404),
        ("gadn:predict", {"inputs": {"image": [[[[0, 0, 0]]]], "artist_id": [9]}}, 400),
        ("gadn:predict", {"instances": [1], "inputs": [1]}, 400),
    ]
    for path, body, status in cases:
        with pytest.raises(urllib.error.HTTPError) as error:
            urllib.request.urlopen(
                urllib.request.Request(f"{base}/{path}", json.dumps(body).encode()), timeout=30
            )
        assert error.value.code == status and json.load(error.value)["error"]


def test_metadata_and_status(server, stub):
    metadata = stub.GetModelMetadata(
        get_model_metadata_pb2.GetModelMetadataRequest(
            model_spec=client.model_spec("gadn"), metadata_field=["signature_def"]
        ),
        timeout=30,
    )
    signatures = get_model_metadata_pb2.SignatureDefMap()
    metadata.metadata["signature_def"].Unpack(signatures)
    assert {"serving_default", "transfer_encoded_by_name", "sample", "classify"} <= set(
        signatures.signature_def
    )
    assert signatures.signature_def["transfer"].inputs["image"].dtype == tf.uint8.as_datatype_enum
    with grpc.insecure_channel(f"127.0.0.1:{server.port}") as channel:
        status = model_service_pb2_grpc.ModelServiceStub(channel).GetModelStatus(
            get_model_status_pb2.GetModelStatusRequest(
                model_spec=client.model_spec("gadn", version=1)
            ),
            timeout=30,
        )
    assert status.model_version_status[0].state == get_model_status_pb2.ModelVersionStatus.AVAILABLE
    metrics = urllib.request.urlopen(
        f"http://127.0.0.1:{server.rest_port}/monitoring/prometheus/metrics"
    ).read()
    assert b':tensorflow:serving:request_count{model_name="gadn",status="OK"}' in metrics


def test_new_version_is_served_without_restart(server, stub):
    base = server.registry.models["gadn"].base_path
    shutil.copytree(os.path.join(base, "1"), os.path.join(base, ".incoming"))
    os.rename(os.path.join(base, ".incoming"), os.path.join(base, "2"))  # atomic, as export.py does
    deadline = time.monotonic() + 60
    while 2 not in server.registry.models["gadn"].versions:
        assert time.monotonic() < deadline, "version 2 was not picked up"
        time.sleep(0.1)
    response = stub.Predict(good_request(), timeout=30)  # no version asked: the newest
    assert response.model_spec.version.value == 2
    assert (
        stub.Predict(
            request(
                version=1,
                image=np.zeros((1, 32, 32, 3), np.uint8),
                artist_id=np.array([1], np.int32),
            ),
            timeout=30,
        ).model_spec.version.value
        == 1
    )


def test_concurrent_load_is_batched_without_errors(server):
    """50 requests from 10 threads: no errors, and each answer is its own request's (batches split correctly)."""
    served = server.registry.models["gadn"].versions[1].loaded
    x = np.random.default_rng(3).integers(0, 256, (50, 32, 32, 3)).astype(np.uint8)
    ids = np.arange(50, dtype=np.int32) % 4
    expected = served.signatures["transfer"](image=tf.constant(x), artist_id=tf.constant(ids))[
        "image"
    ].numpy()
    grpc_client = client.GrpcClient(f"127.0.0.1:{server.port}")
    batches, rows = server.batcher.batches, server.batcher.rows

    def one(i):
        return grpc_client.predict(
            "gadn", "transfer", {"image": x[i : i + 1], "artist_id": ids[i : i + 1]}, version=1
        )["image"][0]

    with concurrent.futures.ThreadPoolExecutor(10) as pool:
        answers = np.stack(list(pool.map(one, range(50))))
    assert np.abs(answers.astype(int) - expected).max() <= 1
    assert server.batcher.rows - rows == 50
    assert server.batcher.batches - batches < 50  # some requests shared a batch


def test_shipped_configs_parse():
    models = read_model_config(os.path.join(REPO, "serving", "models.config"))
    assert {m.name for m in models} == {"gadn", "style_space"}
    assert dict(models[0].version_labels) == {"stable": 1, "canary": 2}
    assert (
        read_batching_config(os.path.join(REPO, "serving", "batching.config")).max_batch_size == 8
    )
    assert serve.read_metrics_path(os.path.join(REPO, "serving", "monitoring.config")).startswith(
        "/monitoring"
    )
