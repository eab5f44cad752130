"""Prints the transfer-quality table (markdown) of trained runs side by side, from each run's evaluation report.

    python -m tf_gadn.evaluate --model_dir runs/demo            # writes runs/demo/eval/report.json
    python benchmarks/quality_table.py runs/demo runs/style_space_demo

Rows are the numbers of tf_gadn.evaluation.transfer_eval (pixel error and its baselines, style attribution, factor errors,
Fréchet distances), then, for style-space runs, the transfers into artists no training image was drawn by; a run
without a report is evaluated first.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

from tf_gadn.evaluation.transfer_eval import SUMMARY_KEYS

REPORTS = ("report.json", "style_space_report.json")


def transfer_numbers(model_dir: str) -> dict:
    for name in REPORTS:
        path = os.path.join(model_dir, "eval", name)
        if os.path.exists(path):
            with open(path, encoding="utf-8") as f:
                report = json.load(f)
            return {**report.get("transfer", {}), **report.get("held_out_artist", {})}
    subprocess.run(
        [sys.executable, "-m", "tf_gadn.evaluate", "--model_dir", model_dir],
        check=True,
        stdout=subprocess.DEVNULL,
    )
    return transfer_numbers(model_dir)


def main(model_dirs: list[str]) -> None:
    columns = {d: transfer_numbers(d) for d in model_dirs}
    print("| measure | " + " | ".join(os.path.basename(d.rstrip("/")) for d in model_dirs) + " |")
    print("|---|" + "---|" * len(model_dirs))
    held_out = sorted({k for numbers in columns.values() for k in numbers if "held_out" in k})
    for key in list(SUMMARY_KEYS) + [k for k in held_out if k not in SUMMARY_KEYS]:
        cells = [columns[d].get(key) for d in model_dirs]
        if any(c is not None for c in cells):
            print(
                f"| {key} | " + " | ".join("-" if c is None else f"{c:.4g}" for c in cells) + " |"
            )


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    main(sys.argv[1:])
