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
import os
import tempfile
import time

import numpy as np

from tf_gadn.explorer import browser
from tf_gadn.explorer.app import ExplorerServer, export_and_serve
from tf_gadn.explorer.random_run import write_random_style_space_run
from tf_gadn.training.config import Config

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


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
            flagfile = (
                os.path.join(REPO, "configs", "test", "style_space_tiny.flags")
                if args.sizes == "tiny"
                else os.path.join(REPO, "configs", "style_space", f"{args.sizes}.flags")
            )
            # the tests' tiny model at 64 px, the issue's latency size; the demo/paper flagfiles as they are
            changes = {"image_size": 64} if args.sizes == "tiny" else {}
            model_dir = os.path.join(tmp, "run")
            started = time.time()
            write_random_style_space_run(
                model_dir,
                Config.from_flagfile(flagfile, model_dir=model_dir, **changes),
                num_artists=16,
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
