"""Numbers, not just pictures, for a trained GADN (`python -m tf_gadn.evaluate --model_dir runs/demo
[--compare_model_dir runs/demo_nonadv_c2]` prints them).

- Table 3 (GADN Appendix B.2): top-1 accuracy of C2 on samples G(c, S(a)) whose content codes c are drawn from the
  full-covariance normal fitted to E(x) over the training set, each artist exactly as often as in training. With a
  second run trained with a non-adversarial C2 (`--adversarial_c2=false`) the full 2 x 2 table is produced.
- Figure 5 (Appendix B.1): reconstruction with the correct style G(E(x), S(a)) next to the zero style G(E(x), 0)
  (the whole figure, with the VAE and MLP-classifier columns: `python -m tf_gadn.figures`).
- Transfers x -> a' on the held-out split (tf_gadn.evaluation.transfer_eval, shared with every method): pixel error against the
  true rendering and its baselines, style attribution, per-factor errors, Fréchet distances (transfers and samples).
- Artist accuracy of a linear probe on E(x): how much style the content code still carries.
"""

from __future__ import annotations

import json
import os

import numpy as np
import tensorflow as tf

from tf_gadn.data import pipeline, records
from tf_gadn.evaluation import probes, transfer_eval
from tf_gadn.gadn import common as gadn_common
from tf_gadn.gadn import figures
from tf_gadn.gadn.stage1 import load_content_stats
from tf_gadn.training import checkpoints

BATCH = 64


def iterate(data_dir: str, image_size: int, split: str = "train"):
    """(images, artists, content_factors) of a split as numpy, in file order."""
    with_factors = bool(records.read_dataset_info(data_dir).get("content_factors"))
    ds = pipeline.make_dataset(
        data_dir,
        split,
        global_batch_size=BATCH,
        image_size=image_size,
        shuffle=False,
        repeat=False,
        drop_remainder=False,
        with_factors=with_factors,
    )
    for batch in ds:
        yield (
            batch["image"].numpy(),
            batch["artist"].numpy(),
            batch.get("content_factors", batch["artist"]).numpy(),
        )


def generate(networks: dict, content: np.ndarray, artists: np.ndarray) -> np.ndarray:
    style, _ = networks["style_table"](tf.constant(artists, tf.int32))
    return networks["generator"]([tf.constant(content, tf.float32), style]).numpy()


def table3_accuracy(
    generator_nets: dict, classifier, stats: dict, artist_counts, seed: int = 1
) -> float:
    """Top-1 accuracy of `classifier` on samples from random content codes, each artist as often as in training."""
    rng = np.random.default_rng(seed)
    labels = rng.permutation(np.repeat(np.arange(len(artist_counts)), artist_counts))
    draw = gadn_common.normal_sampler(stats)
    correct = 0
    for start in range(0, len(labels), BATCH):
        a = labels[start : start + BATCH]
        content = draw(rng, len(a))
        logits = classifier(tf.constant(generate(generator_nets, content, a)))
        correct += int(np.sum(np.argmax(logits, axis=1) == a))
    return correct / len(labels)


def artist_from_content_code(
    networks: dict, data_dir: str, image_size: int, num_artists: int, seed: int = 1
) -> float:
    """Accuracy of a linear probe reading the artist from E(x) (held-out 30% of train): how much style E leaks."""
    train = transfer_eval.load_split(data_dir, image_size, "train")
    codes = np.concatenate(
        [
            networks["encoder"](tf.constant(train["image"][i : i + BATCH]))[0].numpy()
            for i in range(0, len(train["image"]), BATCH)
        ]
    )
    return probes.split_score(codes, train["artist"], num_artists, seed=seed)


def evaluate(
    model_dir: str,
    compare_model_dir: str = "",
    data_dir: str = "",
    out_dir: str = "",
    through_stage: str = "",
) -> dict:
    config, artists, networks = checkpoints.load_trained(model_dir, through_stage)
    data_dir = data_dir or config.data_dir
    out_dir = out_dir or os.path.join(model_dir, "eval")
    counts = [a["count"] for a in artists]
    stats = load_content_stats(model_dir, config.inherit_dir)
    report: dict = {"model_dir": model_dir}
    if "classifier2" in networks:
        report["table3"] = {
            "G (this run)": {
                "C2 (this run)": table3_accuracy(networks, networks["classifier2"], stats, counts)
            }
        }
        if compare_model_dir:
            _, _, other = checkpoints.load_trained(compare_model_dir)
            report["table3"]["G (this run)"]["C2 (compared run)"] = table3_accuracy(
                networks, other["classifier2"], stats, counts
            )
            report["table3"]["G (compared run)"] = {
                "C2 (this run)": table3_accuracy(other, networks["classifier2"], stats, counts),
                "C2 (compared run)": table3_accuracy(other, other["classifier2"], stats, counts),
            }
    images, labels, _ = next(iterate(data_dir, config.image_size))
    report["figure5"], _ = figures.figure5(
        images[:8], labels[:8], os.path.join(out_dir, "figure5.png"), networks
    )
    report["artist_from_content_code_accuracy"] = artist_from_content_code(
        networks, data_dir, config.image_size, len(artists)
    )
    return transfer_eval.add_transfer_and_write(
        report,
        gadn_common.transfer_model(networks, gadn_common.normal_sampler(stats)),
        data_dir,
        config.image_size,
        out_dir,
    )


def run_transfer_model(model_dir: str, data_dir: str = "") -> transfer_eval.TransferModel:
    """A trained GADN run as `transfer_eval.TransferModel` on `data_dir` (this method's `Method.transfer`)."""
    config, artists, networks = checkpoints.load_trained(model_dir)
    transfer_eval.check_same_artists(artists, data_dir or config.data_dir, model_dir)
    stats = load_content_stats(
        model_dir if os.path.exists(os.path.join(model_dir, "gadn_stage1")) else config.inherit_dir
    )
    return gadn_common.transfer_model(networks, gadn_common.normal_sampler(stats))


def format_report(report: dict) -> str:
    lines = []
    for row, cols in report.get("table3", {}).items():
        lines.append(
            f"Table 3  {row}: " + ", ".join(f"{c} top-1 = {v:.2%}" for c, v in cols.items())
        )
    lines.append(
        f"Artist from E(x), linear probe: {report['artist_from_content_code_accuracy']:.2%} "
        f"(chance {report['transfer']['chance']:.2%})"
    )
    if "transfer" in report:
        lines.append("Transfers x -> a' (held-out split):")
        lines.append(transfer_eval.format_summary(report["transfer"]))
    lines.append(f"Figure 5 (input | correct style | zero style): {report['figure5']}")
    return "\n".join(lines)


def cli_report(
    model_dir: str,
    compare_model_dir: str = "",
    data_dir: str = "",
    out_dir: str = "",
    through_stage: str = "",
) -> str:
    """What `python -m tf_gadn.evaluate` prints for a GADN run (this method's `Method.evaluator`)."""
    report = evaluate(model_dir, compare_model_dir, data_dir, out_dir, through_stage)
    return format_report(report) + "\n" + json.dumps(report["transfer"], indent=1)
