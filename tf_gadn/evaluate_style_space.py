"""`python -m tf_gadn.evaluate_style_space --model_dir M`: does the style code hold style and the content code
content? The style space's probe numbers and transfers. Thin CLI over tf_gadn.style_space.evaluation."""

import json

from absl import app, flags

from tf_gadn.style_space import evaluation

FLAGS = flags.FLAGS


def define_flags() -> None:
    flags.DEFINE_string("model_dir", None, "Trained style-space run (on a synthetic data set).")
    flags.DEFINE_string(
        "out_dir", "", "Where style_space_report.json goes (default: MODEL_DIR/eval)."
    )
    flags.mark_flag_as_required("model_dir")


def main(argv):
    del argv
    report = evaluation.evaluate(FLAGS.model_dir, FLAGS.out_dir)
    print(evaluation.format_report(report))
    print(json.dumps(report["four_numbers"], indent=1))


if __name__ == "__main__":
    define_flags()
    app.run(main)
