"""`python -m tf_gadn.explorer --server localhost:8501 --model style_space` (a running TF Serving REST API) or
`python -m tf_gadn.explorer --model_dir runs/style_space_demo` (exports the run to a temp dir and serves it with the
local server): the style explorer at http://localhost:8080/."""

import os
import signal
import sys
import tempfile
import time

from absl import app, flags

from tf_gadn.explorer.app import ExplorerServer, export_and_serve

FLAGS = flags.FLAGS
flags.DEFINE_string(
    "server", "", "host:port of a running TF Serving REST API (e.g. localhost:8501)."
)
flags.DEFINE_string(
    "model", "", "Served model name (default: the run's method with --model_dir, else style_space)."
)
flags.DEFINE_string(
    "model_dir",
    "",
    "A trained run: exported to a temp dir and served locally (instead of --server).",
)
flags.DEFINE_string(
    "data_dir", "", "Data set whose test split the page offers as contents (default: the run's)."
)
flags.DEFINE_string("host", "127.0.0.1", "Address of the page; 0.0.0.0 exposes it to the network.")
flags.DEFINE_integer("port", 8080, "Port of the page.")


def main(argv):
    del argv
    if bool(FLAGS.server) == bool(FLAGS.model_dir):
        print("error: give exactly one of --server HOST:PORT and --model_dir RUN", file=sys.stderr)
        return 2
    # SIGTERM (a service manager, `kill`) ends it as Ctrl-C does: servers stopped, the temp export removed
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    with tempfile.TemporaryDirectory(prefix="explorer-") as tmp:
        local = None
        if FLAGS.model_dir:
            local, model, data_dir = export_and_serve(FLAGS.model_dir, tmp, FLAGS.model)
            upstream = f"127.0.0.1:{local.rest_port}"
        else:
            upstream, model, data_dir = FLAGS.server, FLAGS.model or "style_space", ""
        explorer = ExplorerServer(
            upstream, model, FLAGS.data_dir or data_dir, FLAGS.host, FLAGS.port
        ).start()
        print(
            f"style explorer for model {model!r} at http://{FLAGS.host}:{explorer.port}/ (API {upstream})",
            flush=True,
        )
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            pass
        finally:
            explorer.stop()
            if local is not None:
                local.stop()
    return 0


if __name__ == "__main__":
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    app.run(main)
