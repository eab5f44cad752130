"""`python -m tf_gadn.pruning --model_dir runs/style_space_demo [--split test]`: the style encoder's pruning curves
(style-space Figure 1) and d_style, written as pruning.png / pruning.json and printed as a markdown table. Thin CLI
over tf_gadn.style_space.pruning.run."""

from absl import app, flags

from tf_gadn import cli
from tf_gadn.style_space import pruning


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    f = flags.FLAGS
    return cli.explained(
        lambda: pruning.run(f.model_dir, f.split, f.out_dir, f.tolerance, f.batch_size)
    )[0]


if __name__ == "__main__":
    flags.DEFINE_string("model_dir", None, "Style-space run whose style_encoder stage is pruned.")
    flags.DEFINE_string(
        "split",
        "test",
        "Split the curves are measured on: test (held out; refused if the data set has none) or train.",
    )
    flags.DEFINE_string(
        "out_dir", "", "Where pruning.png / pruning.json go (default: MODEL_DIR/style_encoder)."
    )
    flags.DEFINE_float(
        "tolerance",
        pruning.DEFAULT_TOLERANCE,
        "d_style rule: accuracy within this of all-D accuracy.",
    )
    flags.DEFINE_integer("batch_size", 64, "Images per encoder call.")
    flags.mark_flag_as_required("model_dir")
    app.run(main)
