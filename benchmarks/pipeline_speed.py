"""Input-pipeline throughput (images/s) of tf_gadn.data.pipeline.make_dataset from TFRecords, RGB and Lab, with and
without cache, on whatever CPU this runs on. It writes its own data set (random smooth 256 px images, half JPEG, half
PNG) to a temporary directory, so it needs nothing else.

    /work/venv/bin/python benchmarks/pipeline_speed.py [--num_images 300 --image_size 256 --batch 8 --epochs 2]

Steady state is measured: one full epoch is read first (so the cache is filled and tf.data's autotuner settled), then
`--epochs` epochs are timed. The load average is printed too, because other processes on the machine share its cores.
"""

from __future__ import annotations

import argparse
import io
import os
import tempfile
import time

import numpy as np
from PIL import Image

from tf_gadn.data import pipeline, records


def smooth_image(rng: np.random.Generator, size: int) -> np.ndarray:
    """Low-frequency colour fields plus mild grain: compresses like a drawing, unlike white noise."""
    coarse = rng.integers(0, 256, (6, 6, 3), dtype=np.uint8)
    image = np.asarray(Image.fromarray(coarse).resize((size, size), Image.BICUBIC), np.int16)
    return np.clip(image + rng.integers(-6, 7, image.shape), 0, 255).astype(np.uint8)


def write_dataset(
    out_dir: str, num_images: int, size: int, num_artists: int = 6, seed: int = 0
) -> None:
    rng = np.random.default_rng(seed)
    counts = np.zeros(num_artists, int)
    with records.ShardedWriter(out_dir, "train", 4) as writer:
        for k in range(num_images):
            artist = int(rng.integers(num_artists))
            counts[artist] += 1
            buffer = io.BytesIO()
            Image.fromarray(smooth_image(rng, size)).save(
                buffer, "JPEG" if k % 2 else "PNG", quality=90
            )
            writer.write(
                records.encode_example(buffer.getvalue(), artist, f"artist{artist}", f"{k}")
            )
    records.write_artists(
        out_dir,
        [
            {"id": a, "name": f"artist{a}", "count": int(c), "test_count": 0}
            for a, c in enumerate(counts)
        ],
    )


def images_per_second(data_dir: str, num_images: int, batch: int, epochs: int, **kwargs) -> float:
    ds = pipeline.make_dataset(
        data_dir, global_batch_size=batch, noise_dim=16, uniform_dim=4, **kwargs
    )
    iterator = iter(ds)
    for _ in range(num_images // batch):  # warm-up epoch: fills the cache, settles AUTOTUNE
        next(iterator)
    timed_batches = epochs * num_images // batch
    start = time.perf_counter()
    for _ in range(timed_batches):
        next(iterator)["image"].numpy()
    return timed_batches * batch / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--num_images", type=int, default=300)
    parser.add_argument("--image_size", type=int, default=256)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--epochs", type=int, default=2)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as data_dir:
        write_dataset(data_dir, args.num_images, args.image_size)
        megabytes = (
            sum(os.path.getsize(os.path.join(data_dir, f)) for f in os.listdir(data_dir)) / 2**20
        )
        print(
            f"{args.num_images} images, {args.image_size} px, half JPEG / half PNG, {megabytes:.1f} MiB of "
            f"TFRecords; batch {args.batch}; {os.cpu_count()} CPU cores; load average before "
            f"{os.getloadavg()[0]:.2f}"
        )
        print("| colour | cache | images/s |\n|---|---|---|")
        for color in ("rgb", "lab"):
            for cache in (False, True):
                rate = images_per_second(
                    data_dir,
                    args.num_images,
                    args.batch,
                    args.epochs,
                    image_size=args.image_size,
                    color=color,
                    cache=cache,
                )
                print(f"| {color} | {'yes' if cache else 'no'} | {rate:.0f} |", flush=True)
        print(f"load average after {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
