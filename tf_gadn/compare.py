"""`python -m tf_gadn.compare --model_dirs runs/demo,runs/style_space_demo,runs/stargan_demo --data_dir
data/synthetic64 --out_dir runs/compare`: GADN Section 5's comparison on one collection. Every trained run (through
its method's registry record), the trivial baselines and neural style transfer are scored by the same transfer
report on the same held-out pairs; writes OUT_DIR/comparison.{md,csv,json} and OUT_DIR/figure4.png
(tf_gadn.evaluation.comparison).
"""

from __future__ import annotations

import os
import time

from absl import app, flags

from tf_gadn import cli
from tf_gadn.data import records
from tf_gadn.evaluation import comparison, neural_style
from tf_gadn.training import checkpoints, registry

FLAGS = flags.FLAGS
flags.DEFINE_list("model_dirs", [], "Trained runs to compare (any registered methods).")
flags.DEFINE_string(
    "data_dir", None, "The collection every method is scored on (its held-out split)."
)
flags.DEFINE_string("out_dir", "runs/compare", "Where the table, the figure and caches go.")
flags.DEFINE_bool("neural_style", True, "Add the neural style transfer baselines (Gatys et al.).")
flags.DEFINE_integer(
    "neural_style_iterations", neural_style.ITERATIONS, "Adam iterations per neural style image."
)
flags.DEFINE_integer("seed", 1, "Seed of the pairs x -> a' (the same for every method).")


def run_models(model_dirs, data_dir: str) -> tuple[dict, int]:
    """{row name: TransferModel} of trained runs, and their (common) image size."""
    models, sizes = {}, set()
    for model_dir in model_dirs:
        config, _ = checkpoints.load_run_info(model_dir)
        method = registry.method(config.method)
        models[f"{config.method} ({os.path.basename(os.path.normpath(model_dir))})"] = (
            method.transfer_model(model_dir, data_dir)
        )
        sizes.add(config.image_size)
    if len(sizes) > 1:
        raise ValueError(f"the runs were trained at different image sizes {sorted(sizes)}")
    return models, sizes.pop() if sizes else records.read_dataset_info(data_dir)["image_size"]


def run(
    model_dirs,
    data_dir: str,
    out_dir: str,
    neural: bool = True,
    iterations: int = neural_style.ITERATIONS,
    seed: int = 1,
) -> dict:
    models, image_size = run_models(model_dirs, data_dir)
    start = time.time()
    models.update(comparison.baselines(data_dir, image_size, out_dir, neural, iterations))
    result = comparison.compare(models, data_dir, image_size, out_dir, seed)
    result["seconds"] = time.time() - start
    return result


def main(argv):
    del argv
    code, result = cli.explained(
        lambda: run(
            FLAGS.model_dirs,
            FLAGS.data_dir,
            FLAGS.out_dir,
            FLAGS.neural_style,
            FLAGS.neural_style_iterations,
            FLAGS.seed,
        )
    )
    if code:
        return code
    print(result["table"])
    print(
        f"\n{result['seconds']:.0f} s; "
        + ", ".join(f"{k}: {v}" for k, v in result["paths"].items())
    )
    return 0


if __name__ == "__main__":
    flags.mark_flag_as_required("data_dir")
    app.run(main)
