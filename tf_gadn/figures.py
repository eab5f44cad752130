"""`python -m tf_gadn.figures --model_dir M [--figures 3,5] [--vae_model_dir V] [--mlp_model_dir P] [--out_dir D]`:
GADN's Figure 3 (one content, the artists' styles and random styles) and Figure 5 (stage-1 reconstructions with the
correct and the zero style, next to a VAE's: a run of configs/gadn/paper_ablation_vae.flags, and the MLP classifier's:
paper_ablation_mlp_classifier.flags). Thin CLI over tf_gadn.gadn.figures.write_figures; the style-space figures are
tf_gadn.explore's."""

from absl import app, flags

from tf_gadn import cli
from tf_gadn.gadn import figures

FLAGS = flags.FLAGS


def define_flags() -> None:
    flags.DEFINE_string("model_dir", None, "Trained GADN run.")
    flags.DEFINE_list("figures", ["3", "5"], "Which figures: 3 and/or 5.")
    flags.DEFINE_string("out_dir", "", "Where the figures go (default: MODEL_DIR/figures).")
    flags.DEFINE_string(
        "vae_model_dir", "", "Figure 5's VAE column: a stage-1 run with lambda_c1=0."
    )
    flags.DEFINE_string(
        "mlp_model_dir", "", "Figure 5's MLP-classifier columns: a run with stage1_classifier=code."
    )
    flags.DEFINE_string("eval_data_dir", "", "Data set of Figure 5's rows (default: the run's).")
    flags.DEFINE_integer("rows", 4, "Figure 5: rows, one artist each (the paper: 4).")
    flags.DEFINE_integer("seed", 0, "Figure 3: seed of the content code and the random styles.")
    flags.mark_flag_as_required("model_dir")


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    code, written = cli.explained(
        lambda: figures.write_figures(
            FLAGS.model_dir,
            FLAGS.figures,
            FLAGS.out_dir,
            FLAGS.vae_model_dir,
            FLAGS.mlp_model_dir,
            FLAGS.eval_data_dir,
            FLAGS.rows,
            FLAGS.seed,
        )
    )
    if code:
        return code
    for name, file in written.items():
        print(f"{name:10s} {file}")
    return 0


if __name__ == "__main__":
    define_flags()
    app.run(main)
