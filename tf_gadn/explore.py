"""`python -m tf_gadn.explore --model_dir M [--out_dir D] [--reference_images a.png,b.png] [--dims 0,1]`: the
style-space exploration figures (Figures 2-7) of a trained run. Thin CLI over tf_gadn.style_space.explore.explore."""

from absl import app, flags

from tf_gadn import cli
from tf_gadn.style_space import explore

FLAGS = flags.FLAGS


def define_flags() -> None:
    flags.DEFINE_string("model_dir", None, "Trained style-space run.")
    flags.DEFINE_string("out_dir", "", "Where the figures go (default: MODEL_DIR/explore).")
    flags.DEFINE_list(
        "reference_images",
        [],
        "Image files whose style and content are also explored (Figures 6-7).",
    )
    flags.DEFINE_list(
        "dims",
        None,
        "Style dimensions to sweep, 0-based (default: the paper's 9 and 5, i.e. its 10th and 6th, those "
        "the code has; else the first four).",
    )
    flags.DEFINE_integer("seed", 0, "Seed of the random codes.")
    flags.DEFINE_integer(
        "max_images", 0, "Training images ranked per dimension (0 = every one, as the paper ranks)."
    )
    flags.mark_flag_as_required("model_dir")


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    code, written = cli.explained(
        lambda: explore.explore(
            FLAGS.model_dir,
            FLAGS.out_dir,
            FLAGS.reference_images,
            FLAGS.dims,
            FLAGS.seed,
            FLAGS.max_images,
        )
    )
    if code:
        return code
    for name, file in written.items():
        print(f"{name:28s} {file}")


if __name__ == "__main__":
    define_flags()
    app.run(main)
