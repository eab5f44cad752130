"""Synthetic portraits: renderer speed (images/s, one thread) and how often AnimeFace finds their faces.

    /work/venv/bin/python benchmarks/synthetic_speed.py [--num_images 100 --repeats 3 --detect_images 100]

Renderer: `synthetic.render` is pure Python + PIL in one thread, so images/s is per core; each size is timed
`--repeats` times over `--num_images` random (content, artist) pairs and the median is printed. AnimeFace
(`faces.detect`, the detector the papers used): the fraction of `--detect_images` random portraits in which it finds
exactly one face, at several sizes, and for portraits turned +-15 / +-30 degrees inside a larger scene, the median
error of the eye angle it reports (what the upright crop relies on). The load average is printed next to each table:
other processes share the machine's cores.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import statistics
import time

import numpy as np
from PIL import Image

from tf_gadn.data import faces, synthetic


def _portraits(count: int, seed: int, tilt: bool = True):
    """(content, style) pairs over 16 artists; tilt=False draws every head upright (eyes level)."""
    rng = np.random.default_rng(seed)
    pairs = []
    for k in range(count):
        content = synthetic.sample_content(rng)
        if not tilt:
            content = dataclasses.replace(content, head_tilt=0.0)
        pairs.append((content, synthetic.jitter_style(synthetic.artist_style(seed, k % 16), rng)))
    return pairs


def render_rate(size: int, num_images: int, repeats: int) -> float:
    pairs = _portraits(num_images, seed=size)
    rates = []
    for _ in range(repeats):
        start = time.perf_counter()
        for content, style in pairs:
            synthetic.render(content, style, size)
        rates.append(num_images / (time.perf_counter() - start))
    return statistics.median(rates)


def detection(size: int, count: int) -> tuple[float, float]:
    """(fraction with exactly one face found, ms per detection) on random portraits of `size` px."""
    found, seconds = 0, 0.0
    for content, style in _portraits(count, seed=1000 + size):
        image = synthetic.render(content, style, size)
        start = time.perf_counter()
        found += len(faces.detect(image)) == 1
        seconds += time.perf_counter() - start
    return found / count, 1000 * seconds / count


def turned_detection(turn: float, count: int, size: int = 256) -> tuple[float, float]:
    """Portraits drawn upright, turned `turn` degrees counter-clockwise and pasted into a larger scene: (fraction
    found, median |eye angle error| in degrees over the found ones)."""
    found, errors = 0, []
    for content, style in _portraits(count, seed=2000, tilt=False):
        portrait = Image.fromarray(synthetic.render(content, style, size)).convert("RGBA")
        turned = portrait.rotate(turn, resample=Image.Resampling.BICUBIC, expand=True)
        scene = Image.new("RGB", (int(size * 1.6), int(size * 1.6)), (120, 150, 120))
        scene.paste(
            turned, ((scene.width - turned.width) // 2, (scene.height - turned.height) // 2), turned
        )
        detected = faces.detect(scene)
        if len(detected) == 1:
            found += 1
            eyes = [
                faces.box_center((p.x, p.y, p.width, p.height))
                for p in (detected[0].left_eye.pos, detected[0].right_eye.pos)
            ]
            errors.append(
                abs(faces.eye_angle(*eyes) + turn)
            )  # the expected eye angle is -turn (image y down)
    return found / count, statistics.median(errors) if errors else float("nan")


def _load() -> str:
    return "load average " + " ".join(f"{v:.2f}" for v in os.getloadavg())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--num_images", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--detect_images", type=int, default=100)
    args = parser.parse_args()

    print(f"Renderer, one thread, median of {args.repeats} x {args.num_images} images ({_load()})")
    print("| size | images/s |\n|---|---|")
    for size in (64, 256):
        print(f"| {size} | {render_rate(size, args.num_images, args.repeats):.0f} |", flush=True)

    print(f"\nAnimeFace on {args.detect_images} random synthetic portraits ({_load()})")
    print("| size | exactly one face found | ms / detection |\n|---|---|---|")
    for size in (64, 128, 192, 256):
        rate, ms = detection(size, args.detect_images)
        print(f"| {size} | {100 * rate:.0f}% | {ms:.0f} |", flush=True)

    count = max(args.detect_images // 2, 1)
    print(f"\nAnimeFace on {count} upright 256 px portraits turned in a 410 px scene ({_load()})")
    print("| turn (deg, CCW) | found | median eye-angle error (deg) |\n|---|---|---|")
    for turn in (0, 15, -15, 30, -30):
        rate, error = turned_detection(turn, count)
        print(f"| {turn} | {100 * rate:.0f}% | {error:.1f} |", flush=True)


if __name__ == "__main__":
    main()
