"""`prepare` throughput (input files/s) with and without --detect_faces, with 1 and 2 worker processes.

    /work/venv/bin/python benchmarks/prepare_speed.py [--num_artists 4 --images_per_artist 16 --repeats 2]

It writes its own collection to a temporary directory: synthetic 256 px portraits turned by up to 20 degrees and
pasted into 416 x 384 scenes (what a folder of illustrations looks like to AnimeFace), half PNG and half JPEG. Each
setting runs `prepare.prepare` end to end (listing, decoding, cropping, PNG encoding, staging, sharding; with worker
processes their start-up too) `--repeats` times; the median is printed, with the load average, because other
processes share the machine's cores.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile

import numpy as np
from PIL import Image

from tf_gadn.data import prepare, synthetic


def write_collection(root: str, num_artists: int, images_per_artist: int, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    for artist in range(num_artists):
        os.makedirs(os.path.join(root, f"artist_{artist:02d}"))
        for k in range(images_per_artist):
            style = synthetic.jitter_style(synthetic.artist_style(seed, artist), rng)
            portrait = Image.fromarray(
                synthetic.render(synthetic.sample_content(rng), style, 256)
            ).convert("RGBA")
            turned = portrait.rotate(
                float(rng.uniform(-20, 20)), resample=Image.Resampling.BICUBIC, expand=True
            )
            scene = Image.new("RGB", (416, 384), tuple(int(v) for v in rng.integers(60, 230, 3)))
            scene.paste(
                turned,
                (
                    int(rng.integers(0, 416 - turned.width)),
                    int(rng.integers(0, 384 - turned.height)),
                ),
                turned,
            )
            scene.save(
                os.path.join(root, f"artist_{artist:02d}", f"{k:03d}.{'png' if k % 2 else 'jpg'}")
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--num_artists", type=int, default=4)
    parser.add_argument("--images_per_artist", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    total = args.num_artists * args.images_per_artist
    with tempfile.TemporaryDirectory() as tmp:
        source = os.path.join(tmp, "art")
        write_collection(source, args.num_artists, args.images_per_artist)
        print(
            f"{total} files (416 x 384 scenes, half PNG / half JPEG), output 256 px, {os.cpu_count()} CPU cores, "
            f"median of {args.repeats}; load average before "
            + " ".join(f"{v:.2f}" for v in os.getloadavg())
        )
        print("| --detect_faces | workers | files/s | faces found |\n|---|---|---|---|")
        for detect_faces in (False, True):
            for workers in (1, 2):
                rates, report = [], {}
                for repeat in range(args.repeats):
                    report = prepare.prepare(
                        os.path.join(tmp, f"out_{detect_faces}_{workers}_{repeat}"),
                        input_dir=source,
                        image_size=256,
                        min_images=1,
                        detect_faces=detect_faces,
                        num_workers=workers,
                    )
                    rates.append(total / report["seconds"])
                found = f"{report['faces_found']}/{total}" if detect_faces else "-"
                print(
                    f"| {'yes' if detect_faces else 'no'} | {workers} | {statistics.median(rates):.1f} | {found} |",
                    flush=True,
                )
        print("load average after " + " ".join(f"{v:.2f}" for v in os.getloadavg()))


if __name__ == "__main__":
    main()
