"""`python -m tf_gadn.evaluate --model_dir runs/demo [--compare_model_dir runs/demo_nonadv_c2] [--through_stage S]`:
the numbers of a trained run, by its method's evaluator (tf_gadn.training.registry): GADN's Table 3, Figure 5 and
transfer metrics (tf_gadn.gadn.evaluation), the style space's code probes and transfers (tf_gadn.style_space.evaluation).
"""

from __future__ import annotations

from absl import app, flags

from tf_gadn import cli
from tf_gadn.training import checkpoints, registry

FLAGS = flags.FLAGS
flags.DEFINE_string("model_dir", None, "Trained run to evaluate.")
flags.DEFINE_string(
    "compare_model_dir", "", "Run trained with --adversarial_c2=false, for the full Table 3."
)
flags.DEFINE_string("eval_data_dir", "", "Data set (default: the run's data_dir).")
flags.DEFINE_string("out_dir", "", "Where report.json and figures go (default: MODEL_DIR/eval).")
flags.DEFINE_string(
    "through_stage", "", "Measure the networks as they were after this stage (e.g. gadn_stage1)."
)


def main(argv):
    del argv

    def evaluate():
        method = registry.method(checkpoints.load_run_info(FLAGS.model_dir)[0].method)
        return method.evaluate(
            FLAGS.model_dir,
            compare_model_dir=FLAGS.compare_model_dir,
            data_dir=FLAGS.eval_data_dir,
            out_dir=FLAGS.out_dir,
            through_stage=FLAGS.through_stage,
        )

    code, text = cli.explained(evaluate)
    if not code:
        print(text)
    return code


if __name__ == "__main__":
    flags.mark_flag_as_required("model_dir")
    app.run(main)
