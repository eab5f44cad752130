"""REST and gRPC answers as TF Serving's source gives them (issue 17, item 4), each case stating what
tensorflow_model_server does: malformed /v1/ paths are 400 "Malformed request" (http_rest_api_handler.cc), model
status ignores a label and lists every version newest first (get_model_status_impl.cc), metadata carries no "@type",
JSON leaves must have the dtype's JSON type (json_tensor.cc), Classify/Regress on a Predict signature are
INVALID_ARGUMENT (classifier.cc, regressor.cc)."""

import json
import shutil
import urllib.error
import urllib.request

import grpc
import pytest
from tensorflow_serving.apis import (
    classification_pb2,
    get_model_status_pb2,
    model_service_pb2_grpc,
    prediction_service_pb2_grpc,
    regression_pb2,
)

from tf_gadn.serving import client
from tf_gadn.serving import server as serve

CONFIG = """model_config_list {
  config { name: "gadn" base_path: "exports/gadn" model_platform: "tensorflow"
           model_version_policy { all {} }
           version_labels { key: "stable" value: 1 } }
}
"""


@pytest.fixture(scope="module")
def server(tiny_gadn_export, tmp_path_factory):
    """Versions 1 and 2 of the tiny GADN (2 is a copy of 1), no batching."""
    root = tmp_path_factory.mktemp("fidelity")
    shutil.copytree(tiny_gadn_export, root / "exports")
    shutil.copytree(root / "exports" / "gadn" / "1", root / "exports" / "gadn" / "2")
    (root / "models.config").write_text(CONFIG)
    with serve.LocalServer(
        str(root / "models.config"), port=0, rest_port=0, poll_seconds=0
    ) as running:
        yield running


def http(server, method, path, body=None):
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(
        f"http://127.0.0.1:{server.rest_port}{path}", data, method=method
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as reply:
            return reply.status, json.load(reply)
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"{}")


@pytest.mark.parametrize(
    "method, path",
    [
        ("POST", "/v1/models/gadn:paint"),
        ("GET", "/v1/models/gadn:predict"),
        ("POST", "/v1/models/gadn/versions/x:predict"),
        ("GET", "/v1/whatever"),
        ("POST", "/v1/models/gadn"),
    ],
)
def test_malformed_v1_path_is_400_malformed_request(server, method, path):
    """TF Serving: any /v1/ path its routes do not match is INVALID_ARGUMENT "Malformed request: <method> <path>"."""
    status, answer = http(server, method, path, {"instances": [1]} if method == "POST" else None)
    assert status == 400 and answer["error"] == f"Malformed request: {method} {path}"


def test_routes_are_case_insensitive_and_other_paths_have_no_handler(server):
    assert http(server, "GET", "/V1/MODELS/gadn")[0] == 200
    assert http(server, "GET", "/v2/models/gadn")[0] == 404


def test_model_status_ignores_the_label_and_lists_every_version_newest_first(server):
    """TF Serving: GetModelStatus narrows only for a version number; a label (REST or gRPC) lists every version."""
    _, by_label = http(server, "GET", "/v1/models/gadn/labels/stable")
    _, everything = http(server, "GET", "/v1/models/gadn")
    assert [v["version"] for v in by_label["model_version_status"]] == ["2", "1"]
    assert by_label == everything
    _, one = http(server, "GET", "/v1/models/gadn/versions/1")
    assert [v["version"] for v in one["model_version_status"]] == ["1"]
    with grpc.insecure_channel(f"127.0.0.1:{server.port}") as channel:
        request = get_model_status_pb2.GetModelStatusRequest(
            model_spec=client.model_spec("gadn", label="stable")
        )
        status = model_service_pb2_grpc.ModelServiceStub(channel).GetModelStatus(
            request, timeout=30
        )
    assert [v.version for v in status.model_version_status] == [2, 1]


def test_metadata_json_has_no_type_field(server):
    """TF Serving prints the SignatureDefMap unpacked: metadata.signature_def.signature_def.<name>, no "@type"."""
    status, answer = http(server, "GET", "/v1/models/gadn/versions/1/metadata")
    assert status == 200 and "@type" not in json.dumps(answer)
    assert answer["model_spec"] == {"name": "gadn", "signature_name": "", "version": "1"}
    signatures = answer["metadata"]["signature_def"]["signature_def"]
    assert signatures["transfer"]["inputs"]["artist_id"]["dtype"] == "DT_INT32"


@pytest.mark.parametrize(
    "artist_id, shown",
    [
        (1.9, "1.9 Type: Number"),
        ("1", '"1" Type: String'),
        (True, "true Type: True"),
        ([1, True], "true Type: True"),
    ],
)
def test_json_values_of_the_wrong_json_type_are_refused_not_converted(server, artist_id, shown):
    """TF Serving: an int32 input takes JSON integers only; 1.9, "1" and true were converted to 1 here."""
    ids = artist_id if isinstance(artist_id, list) else [artist_id]
    image = [[[[0, 0, 0]]]] * len(ids)
    status, answer = http(
        server, "POST", "/v1/models/gadn:predict", {"inputs": {"image": image, "artist_id": ids}}
    )
    assert (
        status == 400 and f"JSON Value: {shown} is not of expected type: int32" in answer["error"]
    ), answer


def test_float_inputs_take_integers_and_fractions_but_not_booleans(server):
    body = {
        "signature_name": "generate",
        "inputs": {"content": [[0, 0.5] + [0] * 6], "style": [[1] * 8]},
    }
    assert http(server, "POST", "/v1/models/gadn:predict", body)[0] == 200
    body["inputs"]["style"] = [[True] + [1] * 7]
    status, answer = http(server, "POST", "/v1/models/gadn:predict", body)
    assert (
        status == 400
        and "JSON Value: true Type: True is not of expected type: float" in answer["error"]
    )


def test_classify_and_regress_are_invalid_argument_on_a_predict_signature(server):
    """TF Serving: INVALID_ARGUMENT "Expected classification signature method_name to be ... Was: ...predict"."""
    with grpc.insecure_channel(f"127.0.0.1:{server.port}") as channel:
        stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
        for call, request, kind in [
            (
                stub.Classify,
                classification_pb2.ClassificationRequest(model_spec=client.model_spec("gadn")),
                "classification signature method_name to be tensorflow/serving/classify",
            ),
            (
                stub.Regress,
                regression_pb2.RegressionRequest(model_spec=client.model_spec("gadn", "classify")),
                "regression signature method_name to be tensorflow/serving/regress",
            ),
        ]:
            with pytest.raises(grpc.RpcError) as error:
                call(request, timeout=30)
            assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT
            assert error.value.details() == f"Expected {kind}. Was: tensorflow/serving/predict"
        with pytest.raises(grpc.RpcError) as error:  # the model is still looked up first
            stub.Classify(
                classification_pb2.ClassificationRequest(model_spec=client.model_spec("nope")),
                timeout=30,
            )
        assert error.value.code() == grpc.StatusCode.NOT_FOUND
    status, answer = http(server, "POST", "/v1/models/gadn:classify", {"examples": [{}]})
    assert status == 400 and answer["error"].startswith(
        "Expected classification signature method_name"
    )
    status, answer = http(
        server,
        "POST",
        "/v1/models/gadn/versions/1:regress",
        {"signature_name": "sample", "examples": [{}]},
    )
    assert status == 400 and answer["error"].startswith("Expected regression signature method_name")
