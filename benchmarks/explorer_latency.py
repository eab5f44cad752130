"""Slider-to-picture latency of the style explorer (issue 16) in headless Chromium: the time from a style-dimension
slider's input event to the new picture decoded in the page, one keyboard step at a time, through the whole path
(page -> explorer server -> local TF-Serving REST API -> SavedModel `render_encoded` -> PNG back), and optionally a
screenshot of the page.

    python benchmarks/explorer_latency.py --sizes tiny                      # 64 px, the browser test's model
    python benchmarks/explorer_latency.py --sizes paper                     # 256 px, configs/style_space/paper.flags
    python benchmarks/explorer_latency.py --model_dir runs/style_space_demo --screenshot docs/explorer.png

Without --model_dir the networks keep their random initial weights (speed does not depend on training). Every run
exports into a temp dir. The load average is printed because other processes share the cores.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import tempfile
import time

import numpy as np

from tf_gadn.explorer import browser
from tf_gadn.explorer.app import ExplorerServer, export_and_serve
from tf_gadn.explorer.random_run import write_random_style_space_run
from tf_gadn.training.config import Config

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TINY = dict(
    method="style_space",
    image_size=64,
    ss_style_channels=(8, 16),
    ss_style_blocks=(2, 2),
    ss_vae_channels=(8, 16),
    ss_vae_blocks=(2, 2),
    ss_vae_fc_width=32,
    ss_gen_channels=(8, 16),
    ss_gen_blocks=(2, 2),
    style_code_dim=16,
    content_code_dim=16,
    d_style=4,
    d_content=8,
    gan_code_dim=16,
)
SHAPE_FIELDS = (
    "image_size",
    "style_code_dim",
    "content_code_dim",
    "d_style",
    "d_content",
    "gan_code_dim",
    "generator_output",
)  # plus every ss_* field: what the exported graph's size depends on


def flagfile_shapes(path: str) -> dict:
    """The network-shape fields of a style-space flagfile, typed as Config's defaults."""
    defaults = {f.name: f.default for f in dataclasses.fields(Config)}
    values = {"method": "style_space"}
    with open(path, encoding="utf-8") as f:
        for line in f:
            if not line.startswith("--") or "=" not in line:
                continue
            key, value = line[2:].strip().split("=", 1)
            if key in SHAPE_FIELDS or key.startswith("ss_"):
                default = defaults[key]
                values[key] = (
                    tuple(int(v) for v in value.split(","))
                    if isinstance(default, tuple)
                    else type(default)(value)
                )
    return values


def main():
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model_dir", default="", help="a trained run (exported into a temp dir)")
    parser.add_argument(
        "--sizes",
        default="tiny",
        choices=("tiny", "demo", "paper"),
        help="random weights: the test's tiny 64 px model or configs/style_space/{demo,paper}.flags",
    )
    parser.add_argument(
        "--data_dir", default="", help="drawings offered as contents (default: the run's)"
    )
    parser.add_argument("--moves", type=int, default=40)
    parser.add_argument(
        "--query", default="", help="page settings for the screenshot, e.g. 'a=artist:artist_03'"
    )
    parser.add_argument("--screenshot", default="", help="write a PNG of the page here")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="explorer-bench-") as tmp:
        model_dir = args.model_dir
        if not model_dir:
            shapes = (
                TINY
                if args.sizes == "tiny"
                else flagfile_shapes(
                    os.path.join(REPO, "configs", "style_space", f"{args.sizes}.flags")
                )
            )
            model_dir = os.path.join(tmp, "run")
            started = time.time()
            write_random_style_space_run(
                model_dir, Config(model_dir=model_dir, **shapes), num_artists=16
            )
            print(f"random {args.sizes} run written in {time.time() - started:.0f} s")
        started = time.time()
        local, name, data_dir = export_and_serve(model_dir, tmp)
        print(f"exported and loaded in {time.time() - started:.0f} s")
        explorer = ExplorerServer(
            f"127.0.0.1:{local.rest_port}", name, args.data_dir or data_dir, port=0
        ).start()
        driver = browser.chromium(1400, 1000)
        try:
            driver.get(f"http://127.0.0.1:{explorer.port}/?{args.query}")
            browser.wait_for_render(driver, 0, timeout=300)
            size = driver.execute_script("return document.getElementById('picture').naturalWidth")
            load = os.getloadavg()[0]
            latencies = browser.slider_latencies(driver, "dim-0", args.moves)
            print(
                f"{name}, {size} px, {args.moves} moves (load average {load:.1f} -> {os.getloadavg()[0]:.1f}): "
                f"slider-to-picture p50 {np.percentile(latencies, 50):.1f} ms, "
                f"p99 {np.percentile(latencies, 99):.1f} ms, max {latencies.max():.1f} ms"
            )
            errors = browser.console_errors(driver)
            print(f"console errors: {errors or 'none'}")
            if args.screenshot:
                driver.get(
                    f"http://127.0.0.1:{explorer.port}/?{args.query}"
                )  # the settings asked for, not the sweep
                browser.wait_for_render(driver, 0, timeout=300)
                driver.save_screenshot(args.screenshot)
                print(f"wrote {args.screenshot}")
        finally:
            driver.quit()
            explorer.stop()
            local.stop()


if __name__ == "__main__":
    main()
