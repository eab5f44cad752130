"""Operations as with tensorflow_model_server: the config file re-read while serving (labels promoted without a
restart, models added and removed), ModelService.HandleReloadConfigRequest, no port before every model has a version,
a gRPC health check; and the shipped compose file pinned, health-checked and polling its config."""

import os
import re
import shutil
import time

import grpc
import numpy as np
import pytest
import tensorflow as tf
from google.protobuf import text_format
from tensorflow_serving.apis import model_management_pb2, model_service_pb2_grpc
from tensorflow_serving.config import model_server_config_pb2

from tf_gadn.serving import client
from tf_gadn.serving import server as serve
from tf_gadn.serving.models import read_model_config

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CONFIG = """model_config_list {{
  config {{ name: "gadn" base_path: "exports/gadn" model_platform: "tensorflow"
           model_version_policy {{ all {{}} }}
           version_labels {{ key: "stable" value: {stable} }} }}
  {extra}
}}
"""
SECOND = 'config { name: "other" base_path: "exports/other" model_platform: "tensorflow" }'


@pytest.fixture
def root(tiny_gadn_export, tmp_path):
    shutil.copytree(tiny_gadn_export, tmp_path / "exports")
    shutil.copytree(tmp_path / "exports" / "gadn" / "1", tmp_path / "exports" / "gadn" / "2")
    (tmp_path / "models.config").write_text(CONFIG.format(stable=1, extra=""))
    return tmp_path


def labelled_version(server, label):
    grpc_client = client.GrpcClient(f"127.0.0.1:{server.port}")
    request = {"image": np.zeros((1, 32, 32, 3), np.uint8), "artist_id": np.zeros(1, np.int32)}
    spec = client.model_spec("gadn", "transfer", label=label)
    return server.registry.resolve(spec).number, grpc_client.predict(
        "gadn", "transfer", request, label=label
    )


def wait_for(condition, seconds=30.0):
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.1)


def test_config_file_changes_apply_without_restart(root):
    """--model_config_file_poll_wait_seconds: moving "stable" to 2 in the file moves clients; adding and removing a
    model in the file loads and unloads it."""
    with serve.LocalServer(
        str(root / "models.config"),
        port=0,
        rest_port=None,
        poll_seconds=0.2,
        config_poll_seconds=0.2,
    ) as server:
        assert labelled_version(server, "stable")[0] == 1
        shutil.copytree(root / "exports" / "gadn", root / "exports" / "other")
        (root / "models.config").write_text(CONFIG.format(stable=2, extra=SECOND))
        wait_for(
            lambda: (
                server.registry.models["gadn"].labels["stable"] == 2
                and "other" in server.registry.models
                and server.registry.models["other"].versions
            )
        )
        assert labelled_version(server, "stable")[0] == 2
        (root / "models.config").write_text(
            "model_config_list { broken"
        )  # a bad edit: the last config stays
        time.sleep(0.6)
        assert "other" in server.registry.models
        (root / "models.config").write_text(CONFIG.format(stable=2, extra=""))
        wait_for(lambda: "other" not in server.registry.models)


def test_reload_config_request_replaces_the_served_config(root):
    with serve.LocalServer(
        str(root / "models.config"), port=0, rest_port=None, poll_seconds=0
    ) as server:
        config = model_server_config_pb2.ModelServerConfig()
        text_format.Parse(CONFIG.format(stable=2, extra=""), config)
        config.model_config_list.config[0].base_path = str(root / "exports" / "gadn")
        with grpc.insecure_channel(f"127.0.0.1:{server.port}") as channel:
            reply = model_service_pb2_grpc.ModelServiceStub(channel).HandleReloadConfigRequest(
                model_management_pb2.ReloadConfigRequest(config=config), timeout=30
            )
        assert reply.status.error_code == 0
        assert server.registry.models["gadn"].labels == {"stable": 2}


def health(server, service=""):
    with grpc.insecure_channel(f"127.0.0.1:{server.port}") as channel:
        check = channel.unary_unary(
            "/grpc.health.v1.Health/Check",
            request_serializer=lambda s: s,
            response_deserializer=lambda b: b,
        )
        request = b"\x0a" + bytes([len(service)]) + service.encode() if service else b""
        return check(request, timeout=30)


def test_grpc_health_reports_serving_once_every_model_has_a_version(root):
    (root / "models.config").write_text(
        CONFIG.format(stable=1, extra=SECOND)
    )  # "other" has no versions yet
    with serve.LocalServer(
        str(root / "models.config"), port=0, rest_port=None, poll_seconds=0.2
    ) as server:
        assert health(server) == b"\x08\x02"  # NOT_SERVING
        assert health(server, "gadn") == b"\x08\x01"  # SERVING
        with pytest.raises(grpc.RpcError) as error:
            health(server, "nope")
        assert error.value.code() == grpc.StatusCode.NOT_FOUND
        shutil.copytree(root / "exports" / "gadn", root / "exports" / "other")
        wait_for(lambda: health(server) == b"\x08\x01")


def test_no_port_opens_before_every_model_has_a_version(root):
    """tensorflow_model_server waits for every configured model (ServerCore::WaitUntilModelsAvailable)."""
    (root / "models.config").write_text(CONFIG.format(stable=1, extra=SECOND))
    local = serve.LocalServer(
        str(root / "models.config"),
        port=0,
        rest_port=None,
        poll_seconds=0.1,
        wait_for_models_seconds=0.5,
    )
    with pytest.raises(RuntimeError, match=r"1 model\(s\) did not become available: \['other'\]"):
        local.start()
    assert local._grpc is None


def test_compose_is_pinned_health_checked_and_polls_its_config():
    """(Read as text: the project does not depend on a YAML parser.)"""
    compose = open(os.path.join(REPO, "serving", "docker-compose.yml")).read()
    tag = re.search(
        r"^\s+image: \$\{TF_SERVING_IMAGE:-tensorflow/serving:(\d+\.\d+)\.\d+-gpu\}$", compose, re.M
    )
    assert tag and tag.group(1) == ".".join(
        tf.__version__.split(".")[:2]
    )  # the exporting TensorFlow
    assert "--model_config_file_poll_wait_seconds=60" in compose
    assert "--allow_version_labels_for_unavailable_models=true" in compose
    models = {m.name for m in read_model_config(os.path.join(REPO, "serving", "models.config"))}
    healthcheck = re.search(r"^\s+healthcheck:\n\s+test: (.*)$", compose, re.M).group(1)
    assert set(re.search(r"for m in ([\w ]+); do", healthcheck).group(1).split()) == models
