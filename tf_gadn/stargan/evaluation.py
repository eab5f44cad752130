"""Numbers for a trained StarGAN (`python -m tf_gadn.evaluate --model_dir runs/stargan_demo`): the transfer report
every method shares (tf_gadn.evaluation.transfer_eval: pixel error and its baselines, style attribution, per-factor
probe errors, Fréchet distance of transfers), on the same held-out pairs x -> a' as GADN and the style space."""

from __future__ import annotations

import json
import os

from tf_gadn.evaluation import transfer_eval
from tf_gadn.stargan import common
from tf_gadn.training import checkpoints


def evaluate(
    model_dir: str,
    compare_model_dir: str = "",
    data_dir: str = "",
    out_dir: str = "",
    through_stage: str = "",
) -> dict:
    del compare_model_dir, through_stage  # one stage, no paired ablation
    config, artists, networks = checkpoints.load_trained(model_dir)
    data_dir = data_dir or config.data_dir
    out_dir = out_dir or os.path.join(model_dir, "eval")
    return transfer_eval.add_transfer_and_write(
        {"model_dir": model_dir},
        common.transfer_model(networks["generator"], len(artists)),
        data_dir,
        config.image_size,
        out_dir,
    )


def run_transfer_model(model_dir: str, data_dir: str = "") -> transfer_eval.TransferModel:
    """A trained StarGAN run as `transfer_eval.TransferModel` on `data_dir` (this method's `Method.transfer`)."""
    config, artists, networks = checkpoints.load_trained(model_dir)
    transfer_eval.check_same_artists(artists, data_dir or config.data_dir, model_dir)
    return common.transfer_model(networks["generator"], len(artists))


def cli_report(model_dir: str, **options) -> str:
    """What `python -m tf_gadn.evaluate` prints for a StarGAN run (this method's `Method.evaluator`)."""
    report = evaluate(model_dir, **options)
    return (
        "Transfers x -> a' (held-out split):\n"
        + transfer_eval.format_summary(report["transfer"])
        + "\n"
        + json.dumps(report["transfer"], indent=1)
    )
