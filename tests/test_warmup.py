"""Export writes what tensorflow_model_server reads from a version directory besides the SavedModel: warm-up records
(assets.extra/tf_serving_warmup_requests, replayed before the version is AVAILABLE) and per-model batching parameters
(batching_params.pbtxt, --enable_per_model_batching_parameters). The local server uses both as TF Serving does."""

import os
import shutil
import urllib.request

import numpy as np
import pytest
import tensorflow as tf
from tensorflow_serving.apis import get_model_status_pb2

from tf_gadn.serving import client, warmup
from tf_gadn.serving import server as serve
from tf_gadn.serving.batching import (
    PER_MODEL_FILE,
    SHIPPED,
    BatchingParameters,
    read_batching_config,
)

CONFIG = """model_config_list {
  config { name: "gadn" base_path: "exports/gadn" model_platform: "tensorflow" }
}
"""


def copy_export(tiny_gadn_export, root):
    shutil.copytree(tiny_gadn_export, root / "exports")
    (root / "models.config").write_text(CONFIG)
    return root / "exports" / "gadn" / "1"


def test_export_writes_warmup_records_for_the_main_signatures_and_batching_params(tiny_gadn_export):
    version_dir = str(tiny_gadn_export / "gadn" / "1")
    requests = warmup.read(version_dir)
    assert [
        (r.model_spec.signature_name, r.inputs[next(iter(r.inputs))].tensor_shape.dim[0].size)
        for r in requests
    ] == [
        ("transfer", 1),
        ("transfer", 2),
        ("transfer", 4),
        ("transfer", 8),
        ("transfer_encoded", 1),
        ("generate", 1),
        ("sample", 1),
    ]
    assert read_batching_config(os.path.join(version_dir, PER_MODEL_FILE)) == SHIPPED


def test_local_server_replays_warmup_records_at_load_and_reports_their_time(
    tiny_gadn_export, tmp_path
):
    copy_export(tiny_gadn_export, tmp_path)
    with serve.LocalServer(
        str(tmp_path / "models.config"),
        port=0,
        rest_port=0,
        poll_seconds=0,
        metrics_path="/metrics",
    ) as server:
        version = server.registry.models["gadn"].versions[1]
        assert version.warmup_requests == 7 and version.warmup_seconds > 0
        metrics = (
            urllib.request.urlopen(f"http://127.0.0.1:{server.rest_port}/metrics", timeout=30)
            .read()
            .decode()
        )
        assert ":tensorflow:serving:model_warmup_latency_sum{model_path=" in metrics


def test_a_failing_warmup_record_fails_the_load(tiny_gadn_export, tmp_path):
    """TF Serving does not serve a version whose warm-up fails; neither does the local server."""
    version_dir = copy_export(tiny_gadn_export, tmp_path)
    bad = warmup.read(str(version_dir))[:1]
    bad[0].inputs["artist_id"].CopyFrom(tf.make_tensor_proto(np.array([99], np.int32)))
    warmup.write(str(version_dir), bad)
    with serve.LocalServer(
        str(tmp_path / "models.config"), port=0, rest_port=None, poll_seconds=0
    ) as server:
        assert not server.registry.models["gadn"].versions
        status = server.registry.status(client.model_spec("gadn"))
        assert status.model_version_status[0].state == get_model_status_pb2.ModelVersionStatus.END
        assert "artist_id out of range" in status.model_version_status[0].status.error_message


@pytest.mark.parametrize("per_model", [False, True])
def test_per_model_batching_parameters_replace_the_servers(tiny_gadn_export, tmp_path, per_model):
    copy_export(tiny_gadn_export, tmp_path)
    with serve.LocalServer(
        str(tmp_path / "models.config"),
        port=0,
        rest_port=None,
        poll_seconds=0,
        batching=BatchingParameters(max_batch_size=2),
        per_model_batching=per_model,
    ) as server:
        five = {"image": np.zeros((5, 32, 32, 3), np.uint8), "artist_id": np.zeros(5, np.int32)}
        grpc_client = client.GrpcClient(f"127.0.0.1:{server.port}")
        if per_model:  # the export's own batching_params.pbtxt: max_batch_size 8
            assert grpc_client.predict("gadn", "transfer", five)["image"].shape == (5, 32, 32, 3)
            assert server.batcher.padding == 3  # padded to the allowed batch size 8
        else:
            with pytest.raises(
                client.ServerError, match="Task size 5 is larger than maximum input batch size 2"
            ):
                grpc_client.predict("gadn", "transfer", five)
