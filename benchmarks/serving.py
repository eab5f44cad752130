"""Serving speed of a GADN export (issue "Ship it"): SavedModel direct-call latency, gRPC p50/p99 latency through the
local TF-Serving-compatible server, throughput at concurrency 1/8/32 with and without server-side batching, and TFLite
latency and file size per quantisation mode.

    /work/venv/bin/python benchmarks/serving.py --image_size 32 --channels 8,16 --fc_width 32 --code_dim 8
    /work/venv/bin/python benchmarks/serving.py --image_size 256 --channels 16,32,64,128,256,512 --fc_width 256 \
        --code_dim 32
    /work/venv/bin/python benchmarks/serving.py --image_size 256 --channels 32,64,128,256,512,1024 --fc_width 2048 \
        --code_dim 256 --repeats 40 --requests 48                            # the paper network
    /work/venv/bin/python benchmarks/serving.py --model_dir runs/demo        # a trained run instead

Without --model_dir the networks keep their random initial weights (speed does not depend on training). Every
latency is one `transfer` of one uint8 image at the model size (the same tensor for the direct call and for gRPC,
timed alternately so that the machine's speed drift does not masquerade as gRPC overhead);
batching uses serving/batching.config, strict (TF Serving's batching session) and lenient. The load average is
printed because other processes share the cores.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import dataclasses
import json
import os
import tempfile
import time

import numpy as np
import tensorflow as tf

from tf_gadn.gadn import networks as gadn
from tf_gadn.serving import export, tflite
from tf_gadn.serving import server as serve
from tf_gadn.serving.batching import read_batching_config
from tf_gadn.serving.client import GrpcClient
from tf_gadn.training import checkpoints
from tf_gadn.training.config import Config

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def untrained_run(model_dir: str, config: Config, num_artists: int) -> None:
    """A model_dir load_trained accepts: config, artists, a stage-2 checkpoint of fresh networks, unit content stats."""
    from tf_gadn.gadn.stage1 import CONTENT_STATS

    artists = [
        {"id": a, "name": f"artist_{a:02d}", "count": 1, "test_count": 0}
        for a in range(num_artists)
    ]
    checkpoints.save_run_info(model_dir, config, artists)
    networks = gadn.build_networks(
        config, num_artists, ("encoder", "generator", "style_table", "classifier2")
    )
    checkpoint = checkpoints.stage_checkpoint(tf.Variable(0, dtype=tf.int64), networks)
    tf.train.CheckpointManager(checkpoint, os.path.join(model_dir, "gadn_stage2", "ckpt"), 1).save()
    os.makedirs(os.path.join(model_dir, "gadn_stage1"), exist_ok=True)
    np.savez(
        os.path.join(model_dir, "gadn_stage1", CONTENT_STATS),
        mean=np.zeros(config.content_dim),
        cov=np.eye(config.content_dim),
        count=1,
    )


def timed(call, repeats: int) -> np.ndarray:
    call()  # warm-up: tracing, first allocation
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return np.array(times) * 1000.0


def timed_pairs(first, second, repeats: int) -> tuple[np.ndarray, np.ndarray]:
    """Latencies of two calls taken alternately, so that drift in the machine's speed hits both alike."""
    first(), second()  # warm-up
    times = np.zeros((repeats, 2))
    for i in range(repeats):
        for j, call in enumerate((first, second)):
            start = time.perf_counter()
            call()
            times[i, j] = time.perf_counter() - start
    return times[:, 0] * 1000.0, times[:, 1] * 1000.0


def throughput(
    port: int, feed: dict, concurrency: int, requests: int
) -> tuple[float, float, float]:
    """(requests/s, p50 ms, p99 ms) of `requests` transfers sent by `concurrency` clients at once."""
    client = GrpcClient(f"127.0.0.1:{port}")

    def one(_):
        start = time.perf_counter()
        client.predict("gadn", "transfer", feed)
        return (time.perf_counter() - start) * 1000

    with concurrent.futures.ThreadPoolExecutor(concurrency) as pool:
        list(pool.map(one, range(concurrency)))  # warm-up
        start = time.perf_counter()
        latencies = list(pool.map(one, range(requests)))
    return (
        requests / (time.perf_counter() - start),
        np.percentile(latencies, 50),
        np.percentile(latencies, 99),
    )


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--model_dir", default="", help="trained run (default: random weights of the sizes below)"
    )
    parser.add_argument("--image_size", type=int, default=32)
    parser.add_argument("--channels", default="8,16")
    parser.add_argument("--fc_width", type=int, default=32)
    parser.add_argument(
        "--code_dim", type=int, default=8, help="content and style code length each"
    )
    parser.add_argument("--artists", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=50, help="sequential calls per latency")
    parser.add_argument("--requests", type=int, default=96, help="requests per throughput point")
    args = parser.parse_args()

    work = tempfile.mkdtemp(prefix="serving_bench_")
    model_dir = args.model_dir
    if not model_dir:
        channels = tuple(int(c) for c in args.channels.split(","))
        config = Config(
            method="gadn",
            image_size=args.image_size,
            gadn_channels=channels,
            gadn_blocks=(1,) * len(channels),
            gadn_fc_width=args.fc_width,
            content_dim=args.code_dim,
            style_dim=args.code_dim,
        )
        model_dir = os.path.join(work, "run")
        untrained_run(model_dir, config, args.artists)
    path = export.export(
        model_dir, os.path.join(work, "exports"), "gadn", tflite_modes=tflite.MODES
    )
    config, _ = checkpoints.load_run_info(model_dir)
    size = config.image_size
    feed = {
        "image": np.random.default_rng(0).integers(0, 256, (1, size, size, 3)).astype(np.uint8),
        "artist_id": np.array([1], np.int32),
    }
    with open(os.path.join(work, "models.config"), "w") as f:
        f.write(
            'model_config_list { config { name: "gadn" base_path: "exports/gadn" model_platform: "tensorflow" } }'
        )

    rows = []
    saved_model = tf.saved_model.load(path)

    def direct_call():
        outputs = saved_model.signatures["transfer"](**{k: tf.constant(v) for k, v in feed.items()})
        return {
            k: v.numpy() for k, v in outputs.items()
        }  # a caller wants numpy, as the server returns

    batching = read_batching_config(os.path.join(REPO, "serving", "batching.config"))
    rates = {}
    modes = [("no batching", None)] + [
        (
            f"batching {mode} (max {batching.max_batch_size}, {batching.batch_timeout_micros} us)",
            dataclasses.replace(batching, mode=mode),
        )
        for mode in ("strict", "lenient")
    ]
    for label, params in modes:
        with serve.LocalServer(
            os.path.join(work, "models.config"),
            port=0,
            rest_port=None,
            batching=params,
            poll_seconds=0,
        ) as server:
            if params is None:
                client = GrpcClient(f"127.0.0.1:{server.port}")
                direct, remote = timed_pairs(
                    direct_call,
                    lambda: client.predict("gadn", "transfer", feed),  # noqa: B023 (called in this iteration)
                    args.repeats,
                )
                overhead = np.median(remote) / np.median(direct) - 1.0
                rows.append(
                    (
                        "SavedModel direct call, p50 / p99",
                        f"{np.median(direct):.2f} / {np.percentile(direct, 99):.2f} ms",
                    )
                )
                rows.append(
                    (
                        "gRPC Predict (local server), p50 / p99",
                        f"{np.median(remote):.2f} / {np.percentile(remote, 99):.2f} ms "
                        f"(p50 overhead {overhead:+.0%})",
                    )
                )
            rates[label] = [throughput(server.port, feed, c, args.requests) for c in (1, 8, 32)]
    for label, values in rates.items():
        rows.append(
            (
                f"throughput req/s at concurrency 1 / 8 / 32, {label}",
                " / ".join(f"{rate:.1f}" for rate, _, _ in values),
            )
        )
        rows.append(
            (
                f"p50 / p99 ms at concurrency 1 / 8 / 32, {label}",
                ", ".join(f"{p50:.1f} / {p99:.1f}" for _, p50, p99 in values),
            )
        )
    speedup = rates[list(rates)[1]][1][0] / rates["no batching"][1][0]
    rows.append(("strict batching speed-up at concurrency 8", f"{speedup:.2f}x"))
    for mode in tflite.MODES:
        meta = json.load(open(os.path.join(path, "tflite", f"{mode}.json")))
        runner = tflite.Runner(os.path.join(path, "tflite", tflite.file_name("transfer", mode)))
        latency = timed(lambda: runner(**feed), args.repeats)  # noqa: B023 (called in this iteration)
        sizes = " + ".join(
            f"{meta['signatures'][s]['bytes'] / 2**20:.2f}" for s in tflite.SIGNATURES
        )
        rows.append(
            (
                f"TFLite {mode}: transfer p50, size transfer + generate",
                f"{np.median(latency):.2f} ms, {sizes} MiB",
            )
        )

    print(
        f"\nGADN serving benchmark: {size} px, trunk {config.gadn_channels}, fc {config.gadn_fc_width}, "
        f"codes {config.content_dim}+{config.style_dim}, {'trained' if args.model_dir else 'random'} weights; "
        f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}; TF {tf.__version__}"
    )
    width = max(len(r[0]) for r in rows)
    print(f"| {'measurement':{width}s} | value |\n|{'-' * (width + 2)}|-------|")
    for name, value in rows:
        print(f"| {name:{width}s} | {value} |")


if __name__ == "__main__":
    main()
