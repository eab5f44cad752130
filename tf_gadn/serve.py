"""`python -m tf_gadn.serve --model_config serving/models.config --port 8500 --rest_port 8501`: the local server
that speaks TF Serving's gRPC and REST APIs over exported SavedModels. Thin CLI over tf_gadn.serving.server."""

import time

from absl import app, flags

from tf_gadn.serving import batching as batching_config
from tf_gadn.serving import server
from tf_gadn.serving.image_headers import MAX_IMAGE_PIXELS
from tf_gadn.serving.protocol import MAX_MESSAGE_BYTES

FLAGS = flags.FLAGS


def define_flags():
    flags.DEFINE_string(
        "model_config", None, "TF Serving ModelServerConfig text file (serving/models.config)."
    )
    flags.DEFINE_string(
        "host", "127.0.0.1", "Address to bind; 0.0.0.0 exposes the server to the network."
    )
    flags.DEFINE_integer("port", 8500, "gRPC port.")
    flags.DEFINE_integer(
        "rest_port", 8501, "REST port (0: no REST API), as TF Serving's --rest_api_port."
    )
    flags.DEFINE_bool(
        "enable_batching", False, "Batch concurrent requests (TF Serving's --enable_batching)."
    )
    flags.DEFINE_string(
        "batching_parameters_file",
        "",
        "TF Serving batching.config (default: BatchingParameters()).",
    )
    flags.DEFINE_bool(
        "enable_per_model_batching_parameters",
        False,
        "Use the batching_params.pbtxt in each version directory (written by export) instead of "
        "--batching_parameters_file for that model, as tensorflow_model_server does.",
    )
    flags.DEFINE_enum(
        "batching_mode",
        "strict",
        ["strict", "lenient"],
        "strict: TF Serving's batching session (mixed shapes or one bad request fail the whole batch); "
        "lenient (a local extension): group by shape, re-run a failed batch request by request.",
    )
    flags.DEFINE_float(
        "file_system_poll_wait_seconds", 1.0, "Seconds between scans for new versions (0: never)."
    )
    flags.DEFINE_float(
        "model_config_file_poll_wait_seconds",
        0.0,
        "Seconds between re-reads of --model_config (0: read once), as TF Serving's flag: label and "
        "version policy edits apply without a restart.",
    )
    flags.DEFINE_float(
        "wait_for_models_seconds",
        24 * 3600.0,
        "Open no port until every configured model has a version (TF Serving waits forever); fail "
        "after this long. 0: start at once.",
    )
    flags.DEFINE_integer(
        "max_message_bytes", MAX_MESSAGE_BYTES, "Largest request or response, gRPC and REST."
    )
    flags.DEFINE_integer(
        "max_image_pixels", MAX_IMAGE_PIXELS, "Largest image (H x W) a request may carry or encode."
    )
    flags.DEFINE_string(
        "monitoring_config_file", "", "TF Serving monitoring.config (Prometheus on the REST port)."
    )
    flags.DEFINE_integer(
        "max_request_rows",
        server.MAX_REQUEST_ROWS,
        "Most rows (0th dimension) one request may declare; with batching also max_batch_size.",
    )
    flags.DEFINE_integer(
        "rest_read_timeout",
        server.REST_READ_TIMEOUT_SECONDS,
        "Seconds a REST connection may stall mid-request or idle before it is closed.",
    )


def main(argv):
    del argv
    batching = None
    if FLAGS.enable_batching:
        batching = (
            batching_config.read_batching_config(
                FLAGS.batching_parameters_file, FLAGS.batching_mode
            )
            if FLAGS.batching_parameters_file
            else batching_config.BatchingParameters(mode=FLAGS.batching_mode)
        )
    metrics = (
        server.read_metrics_path(FLAGS.monitoring_config_file)
        if FLAGS.monitoring_config_file
        else ""
    )
    local = server.LocalServer(
        FLAGS.model_config,
        FLAGS.host,
        FLAGS.port,
        FLAGS.rest_port or None,
        batching,
        FLAGS.file_system_poll_wait_seconds,
        FLAGS.max_message_bytes,
        FLAGS.max_image_pixels,
        metrics,
        max_request_rows=FLAGS.max_request_rows,
        rest_read_timeout=FLAGS.rest_read_timeout,
        per_model_batching=FLAGS.enable_per_model_batching_parameters,
        config_poll_seconds=FLAGS.model_config_file_poll_wait_seconds,
        wait_for_models_seconds=FLAGS.wait_for_models_seconds,
    )
    local.start()
    print(
        f"serving {sorted(local.registry.models)} on {local.host}: gRPC {local.port}, REST {local.rest_port}",
        flush=True,
    )
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        local.stop()


if __name__ == "__main__":
    define_flags()
    flags.mark_flag_as_required("model_config")
    app.run(main)
