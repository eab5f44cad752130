"""`python -m tf_gadn.train --flagfile=configs/gadn/demo.flags`: trains one stage or a method's whole chain.

Thin CLI: parses flags into the frozen Config once, builds the data set on demand (synthetic), picks the
tf.distribute strategy, and hands each stage to `tf_gadn.training.loop.train_stage`. A later stage inherits the networks of the
earlier ones from their checkpoints; a finished stage is skipped on rerun, an interrupted one resumes. A rerun with a
different config or data set into the same model_dir is refused unless --overwrite_config (checkpoints.check_run_dir).
"""

from __future__ import annotations

import os
import shutil
import sys
import time

from absl import app, flags

from tf_gadn.training.config import Config, define_flags

define_flags()
FLAGS = flags.FLAGS


def ensure_data(config: Config) -> None:
    """Renders the embedded synthetic data set when asked to and it is not there yet."""
    from tf_gadn.data import records

    if os.path.exists(os.path.join(config.data_dir, records.ARTISTS_FILE)):
        return
    if not config.synthetic_if_missing:
        raise FileNotFoundError(
            f"no data set in {config.data_dir!r}: run tf_gadn.data.prepare / tf_gadn.data.synthetic "
            "or pass --synthetic_if_missing"
        )
    from tf_gadn.data import synthetic

    print(f"Rendering the synthetic data set into {config.data_dir} ...", flush=True)
    synthetic.generate_dataset(
        config.data_dir,
        num_artists=config.synthetic_artists,
        images_per_artist=config.synthetic_images_per_artist,
        image_size=config.image_size,
        seed=config.seed,
        family=config.synthetic_family,
    )


def run(config: Config) -> dict[str, dict[str, float]]:
    """Library entry point (tests call this): trains the configured stages in order, returns their last metrics."""
    from tf_gadn.data import records
    from tf_gadn.training import checkpoints, distribute, loop
    from tf_gadn.training.registry import stages_to_run

    names = stages_to_run(config.method, config.stage)
    distribute.set_threads(config.inter_op_threads, config.intra_op_threads)
    strategy = distribute.make_strategy(config.strategy, config.num_cpu_devices)
    ensure_data(config)
    artists = records.read_artists(config.data_dir)
    # A model_dir holds one model: refuse another config or data set before anything is written (every worker checks,
    # so none is left waiting for a chief that stopped).
    if distribute.is_chief(strategy):
        checkpoints.save_run_info(config.model_dir, config, artists)
    else:
        checkpoints.check_run_dir(config.model_dir, config, artists)
    results = {}
    for name in names:
        if config.resume and loop.stage_is_done(config, name):
            print(f"[{name}] already complete, skipping", flush=True)
            continue
        print(f"[{name}] training ({strategy.num_replicas_in_sync} replica(s))", flush=True)
        started = time.time()
        results[name] = loop.train_stage(config, name, strategy, artists)
        print(
            f"\n[{name}] done in {time.time() - started:.0f}s: {loop.summarize(results[name])}",
            flush=True,
        )
    last = loop.latest_samples(checkpoints.stage_dir(config.model_dir, names[-1]))
    if last and distribute.is_chief(strategy):
        shutil.copyfile(last, loop.final_grid_path(config))
        print(
            f"Sample grid (rows = contents, columns = artists): {loop.final_grid_path(config)}",
            flush=True,
        )
    return results


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    from absl import logging

    logging.set_verbosity(
        logging.WARNING
    )  # keep checkpoint-saver chatter out of the progress output
    from tf_gadn import cli
    from tf_gadn.training.loop import NonFiniteLossError, TrainingInterrupted

    try:
        return cli.explained(lambda: run(Config.from_flags(FLAGS)), NonFiniteLossError)[0]
    except TrainingInterrupted as err:
        print(f"\ninterrupted: {err}", file=sys.stderr)
        return 130


if __name__ == "__main__":
    app.run(main)
