"""Held-out transfer error and style attribution of a GADN run's kept stage-1 checkpoints, each alone and averaged
(the measurement behind --ema_decay, BUILD.md "Weight averaging").

    python benchmarks/checkpoint_average.py runs/demo [runs/demo_lineart ...]

For each run: one row per kept checkpoint (CheckpointManager keeps the last three), then the plain mean of the
newest 2 and of all kept checkpoints' network weights. Synthetic data only (the scores need the ground truth).
"""

from __future__ import annotations

import sys

import numpy as np
import tensorflow as tf

from tf_gadn.data import records
from tf_gadn.evaluation import transfer_eval, transfer_metrics
from tf_gadn.gadn.common import transfer_model
from tf_gadn.training import checkpoints, registry

STAGE = "gadn_stage1"


def scorer(config, num_artists: int):
    info = records.read_dataset_info(config.data_dir)
    test, _ = transfer_eval.held_out_split(config.data_dir, config.image_size)
    targets = transfer_eval.other_artists(test["artist"], num_artists, config.seed)
    truth, source = (
        transfer_eval.synthetic_truth(info, test["content_factors"], artists, config.image_size)
        for artists in (targets, test["artist"])
    )

    def score(networks) -> str:
        out = transfer_eval.batched(
            transfer_model(networks).transfer, test["image"], test["artist"], targets
        )
        error = float(np.mean(transfer_metrics.pixel_distances(out, truth)))
        attribution = transfer_metrics.style_attribution(out, truth, source)["style_attribution"]
        return f"pixel error {error:.4f}  attribution {attribution:.1%}  ({len(targets)} pairs)"

    return score


def main(run_dirs: list[str]) -> None:
    for run in run_dirs:
        config, artists = checkpoints.load_run_info(run)
        built = registry.method(config.method).build_networks(config, len(artists))
        networks = {n: built[n] for n in checkpoints.networks_in_stage(run, STAGE) if n in built}
        score = scorer(config, len(artists))
        paths = checkpoints.checkpoint_candidates(f"{run}/{STAGE}/ckpt")[::-1]  # oldest first
        kept = []
        print(f"{run} ({STAGE})")
        for path in paths:
            checkpoints.stage_checkpoint(tf.Variable(0, dtype=tf.int64), networks).restore(
                path
            ).expect_partial()
            kept.append({n: [w.numpy() for w in net.weights] for n, net in networks.items()})
            print(f"  step {checkpoints.checkpoint_number(path):6d}        {score(networks)}")
        for count in range(2, len(kept) + 1):
            chosen = kept[-count:]
            for name, net in networks.items():
                for i, weight in enumerate(net.weights):
                    values = [c[name][i] for c in chosen]
                    mean = np.mean(values, axis=0) if values[0].dtype.kind == "f" else values[-1]
                    weight.assign(mean.astype(values[0].dtype))
            print(f"  mean of the newest {count}  {score(networks)}")


if __name__ == "__main__":
    main(sys.argv[1:])
