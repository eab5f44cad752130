"""Strict batching reproduces TF Serving's batching session (batching_session.cc): requests of different shapes in
one batch fail together with FAILED_PRECONDITION, one request's error is every neighbour's, oversize requests are
refused before queueing, batches are padded to allowed sizes. The lenient mode (a local extension) keeps
neighbours apart. Driven on the Batcher with a numpy function, and through a real server on the tiny GADN."""

import concurrent.futures
import os
import shutil
import threading

import grpc
import numpy as np
import pytest
import tensorflow as tf
from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc

from tf_gadn.serving import client
from tf_gadn.serving import server as serve
from tf_gadn.serving.batching import (
    Batcher,
    BatchingParameters,
    batching_params_text,
    parse_batching_config,
    read_batching_config,
)
from tf_gadn.serving.models import ServingError, invalid

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHAPE_MESSAGE = (
    "Tensors with name 'x' from different tasks have different shapes and padding is turned off."
)


def together(batcher, function, *inputs):
    """Runs the requests from one thread each, released at once; returns each one's result or exception."""
    gate = threading.Barrier(len(inputs))

    def one(x):
        gate.wait()
        try:
            return batcher.run("key", function, x)
        except ServingError as error:
            return error

    with concurrent.futures.ThreadPoolExecutor(len(inputs)) as pool:
        return list(pool.map(one, inputs))


def doubling(calls):
    def function(inputs):
        calls.append({k: v.shape for k, v in inputs.items()})
        if (inputs["x"] < 0).any():
            raise invalid("negative input")
        return {"y": inputs["x"] * 2}

    return function


# one batch for sure: the worker waits up to 2 s for the second request, and both fit in max_batch_size
SLOW = dict(max_batch_size=4, batch_timeout_micros=2_000_000)


def test_strict_mixed_shapes_fail_the_whole_batch_with_tf_servings_message():
    calls = []
    results = together(
        Batcher(BatchingParameters(**SLOW)),
        doubling(calls),
        {"x": np.ones((1, 3))},
        {"x": np.ones((1, 5))},
    )
    assert all(
        isinstance(r, ServingError) and r.code == grpc.StatusCode.FAILED_PRECONDITION
        for r in results
    )
    assert all(r.message.startswith(SHAPE_MESSAGE) for r in results)
    assert calls == []  # nothing ran


def test_strict_one_bad_request_fails_its_neighbour_with_the_same_status():
    calls = []
    good, bad = together(
        Batcher(BatchingParameters(**SLOW)),
        doubling(calls),
        {"x": np.ones((1, 3))},
        {"x": -np.ones((1, 3))},
    )
    assert isinstance(good, ServingError) and isinstance(bad, ServingError)
    assert good.code == bad.code == grpc.StatusCode.INVALID_ARGUMENT and good.message == bad.message
    assert len(calls) == 1  # one run for both, never retried alone


def test_lenient_keeps_a_bad_request_or_another_shape_from_failing_its_neighbours():
    batcher = Batcher(BatchingParameters(**SLOW, mode="lenient"))
    good, bad = together(batcher, doubling([]), {"x": np.ones((1, 3))}, {"x": -np.ones((1, 3))})
    np.testing.assert_array_equal(good["y"], 2 * np.ones((1, 3)))
    assert isinstance(bad, ServingError) and bad.message == "negative input"
    small, large = together(batcher, doubling([]), {"x": np.ones((1, 3))}, {"x": np.ones((1, 5))})
    assert small["y"].shape == (1, 3) and large["y"].shape == (1, 5)


def test_oversize_request_is_refused_before_queueing():
    calls = []
    with pytest.raises(ServingError) as error:
        Batcher(BatchingParameters(max_batch_size=4)).run(
            "key", doubling(calls), {"x": np.ones((5, 3))}
        )
    assert error.value.code == grpc.StatusCode.INVALID_ARGUMENT
    assert error.value.message == "Task size 5 is larger than maximum input batch size 4"
    assert calls == []


def test_batches_are_padded_to_the_next_allowed_size_and_split_back():
    calls = []
    batcher = Batcher(
        BatchingParameters(
            max_batch_size=8, batch_timeout_micros=2_000_000, allowed_batch_sizes=(2, 4, 8)
        )
    )
    rows = [np.full((1, 2), i, float) for i in range(3)]
    results = together(batcher, doubling(calls), *({"x": r} for r in rows))
    assert calls == [{"x": (4, 2)}] and batcher.padding == 1 and batcher.rows == 3
    for r, result in zip(rows, results):
        np.testing.assert_array_equal(result["y"], 2 * r)


@pytest.mark.parametrize(
    "sizes, message", [((2, 1, 8), "monotonically increasing"), ((2, 4), "must match")]
)
def test_allowed_batch_sizes_are_validated_as_tf_serving_does(sizes, message):
    with pytest.raises(ValueError, match=message):
        BatchingParameters(max_batch_size=8, allowed_batch_sizes=sizes)


def test_shipped_batching_config_is_strict_with_allowed_sizes_and_round_trips():
    params = read_batching_config(os.path.join(REPO, "serving", "batching.config"))
    assert (
        params.mode == "strict"
        and params.allowed_batch_sizes == (1, 2, 4, 8)
        and params.max_batch_size == 8
    )
    assert parse_batching_config(batching_params_text(params)) == params


# ---- through the server, as a TF Serving client sees it --------------------------------------------------------
CONFIG = """model_config_list {
  config { name: "gadn" base_path: "exports/gadn" model_platform: "tensorflow" }
}
"""


@pytest.fixture(scope="module", params=["strict", "lenient"])
def server(request, tiny_gadn_export, tmp_path_factory):
    root = tmp_path_factory.mktemp(f"batching-{request.param}")
    shutil.copytree(tiny_gadn_export, root / "exports")
    (root / "models.config").write_text(CONFIG)
    params = BatchingParameters(
        max_batch_size=8, batch_timeout_micros=1_000_000, mode=request.param
    )
    with serve.LocalServer(
        str(root / "models.config"), port=0, rest_port=None, poll_seconds=0, batching=params
    ) as running:
        yield running


def predict_together(server, *requests):
    gate = threading.Barrier(len(requests))
    with grpc.insecure_channel(f"127.0.0.1:{server.port}") as channel:
        stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)

        def one(request):
            gate.wait()
            try:
                return stub.Predict(request, timeout=60)
            except grpc.RpcError as error:
                return error

        with concurrent.futures.ThreadPoolExecutor(len(requests)) as pool:
            return list(pool.map(one, requests))


def transfer(image, artist_id):
    request = predict_pb2.PredictRequest(model_spec=client.model_spec("gadn", "transfer"))
    request.inputs["image"].CopyFrom(tf.make_tensor_proto(image))
    request.inputs["artist_id"].CopyFrom(tf.make_tensor_proto(np.array([artist_id], np.int32)))
    return request


def test_server_batches_like_tf_serving_in_strict_mode_only(server):
    good = transfer(np.zeros((1, 32, 32, 3), np.uint8), 1)
    strict = server.batcher.params.mode == "strict"
    # another image size in the same batch
    first, other = predict_together(server, good, transfer(np.zeros((1, 40, 48, 3), np.uint8), 1))
    if strict:
        assert first.code() == other.code() == grpc.StatusCode.FAILED_PRECONDITION
        assert "have different shapes and padding is turned off" in first.details()
    else:
        assert (
            first.outputs["image"].tensor_shape.dim[1].size
            == other.outputs["image"].tensor_shape.dim[1].size
            == 32
        )
    # an artist the model does not know, batched with a good request
    first, bad = predict_together(server, good, transfer(np.zeros((1, 32, 32, 3), np.uint8), 99))
    assert (
        bad.code() == grpc.StatusCode.INVALID_ARGUMENT and "artist_id out of range" in bad.details()
    )
    if strict:
        assert first.code() == grpc.StatusCode.INVALID_ARGUMENT and first.details() == bad.details()
    else:
        assert first.outputs["image"].tensor_shape.dim[0].size == 1
