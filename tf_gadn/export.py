"""`python -m tf_gadn.export --model_dir M --export_dir E --name gadn [--version N] [--tflite float16]`: ship a
trained run as a TF Serving SavedModel at `E/<name>/<version>/`. Thin CLI over tf_gadn.serving.export.export."""

from absl import app, flags

from tf_gadn.serving import export

FLAGS = flags.FLAGS


def define_flags():
    flags.DEFINE_string("model_dir", None, "Trained run (any method) to export.")
    flags.DEFINE_string(
        "export_dir", None, "Root of the model base paths: writes EXPORT_DIR/NAME/VERSION/."
    )
    flags.DEFINE_string("name", "", "Model name (default: the run's method).")
    flags.DEFINE_integer("version", 0, "Version number (0: one more than the largest present).")
    flags.DEFINE_list(
        "tflite",
        [],
        "Also convert transfer and generate to TFLite: float32, float16, dynamic_int8.",
    )


def main(argv):
    del argv
    from tf_gadn import cli

    code, written = cli.explained(
        lambda: export.export(
            FLAGS.model_dir, FLAGS.export_dir, FLAGS.name, FLAGS.version, FLAGS.tflite
        )
    )
    if not code:
        print(written)
    return code


if __name__ == "__main__":
    define_flags()
    flags.mark_flags_as_required(["model_dir", "export_dir"])
    app.run(main)
