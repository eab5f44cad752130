"""Where one training step spends its time: TensorFlow's profiler traced over a few steps of a stage (built as
benchmarks/train_speed.py builds it), the op events of the host trace summed per op type and per kind of work.

    python benchmarks/profile_step.py --size paper --stage gadn_stage1 --variant bf16 --steps 2 [--top 25]

Kinds: convolutions (forward and both gradients), dense layers (MatMul), casts, layout conversions between oneDNN's
and TensorFlow's formats, the optimizer update (ops under the optimizer's name scope, ResourceApplyAdam), upsampling
and its gradient, elementwise and the rest. Times are the ops' own wall time summed over the executor's threads, per
step: on 2 cores two ops overlap, so the sum can exceed the step's wall time (the step's wall time is printed too).
The trace is written under --logdir (TensorBoard's profile plugin reads it).
"""

from __future__ import annotations

import argparse
import collections
import glob
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

# before TensorFlow loads: the package's oneDNN default, as training has it
import tf_gadn  # noqa: E402,F401

# isort: split

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
import train_speed  # noqa: E402
from tensorflow.tsl.profiler.protobuf import xplane_pb2  # noqa: E402

from tf_gadn.training.config import Config  # noqa: E402

KINDS = (
    ("layout conversion", ("ToTf", "MklToTf", "TfToMkl", "Reorder", "DataFormat", "Transpose")),
    ("convolution", ("Conv2D", "Conv2DBackpropInput", "Conv2DBackpropFilter", "Conv2DWithBias")),
    ("dense (MatMul)", ("MatMul", "BatchMatMul")),
    ("cast", ("Cast",)),
    ("upsampling", ("ResizeNearestNeighbor", "ResizeNearestNeighborGrad", "DepthToSpace", "Tile")),
)


def kind(op_name: str, op_type: str) -> str:
    if "optimizer" in op_name.lower() or "adam" in op_name.lower() or "rmsprop" in op_name.lower():
        return "optimizer update"
    bare = op_type.lstrip("_").replace("MklNative", "").replace("Mkl", "").replace("Fused", "")
    for name, types in KINDS:
        if any(bare.startswith(t) or t in op_type for t in types):
            return name
    return "other"


def op_events(logdir: str):
    """(op name, op type, duration in ps) of every TensorFlow op event in the host plane of the trace."""
    (path,) = glob.glob(os.path.join(logdir, "plugins", "profile", "*", "*.xplane.pb"))
    space = xplane_pb2.XSpace()
    with open(path, "rb") as f:
        space.ParseFromString(f.read())
    for plane in space.planes:
        if not plane.name.startswith("/host:CPU"):
            continue
        for line in plane.lines:
            for event in line.events:
                name = plane.event_metadata[event.metadata_id].name
                if ":" not in name or name.startswith(("Iterator", "MemoryAllocation")):
                    continue
                op_name, op_type = name.rsplit(":", 1)
                # "Run" and "Process" are the function call and the executor around the ops (they would count twice)
                if op_type in ("Run", "Process"):
                    continue
                if op_type and op_type[0].isupper() or op_type.startswith("_"):
                    yield op_name, op_type, event.duration_ps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", default="paper", choices=("demo", "paper"))
    parser.add_argument("--stage", default="gadn_stage1")
    parser.add_argument(
        "--variant", default="bf16", help="as train_speed.py's --precisions entries"
    )
    parser.add_argument("--steps", type=int, default=2, help="traced steps (after 2 untraced)")
    parser.add_argument("--num_artists", type=int, default=8)
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument(
        "--top_ops", type=int, default=0, help="also print the N slowest single ops, by node name"
    )
    parser.add_argument("--logdir", default="/tmp/tf_gadn_profile")
    parser.add_argument("--inter_op_threads", type=int, default=0)
    parser.add_argument("--intra_op_threads", type=int, default=0)
    args = parser.parse_args()
    tf.config.threading.set_inter_op_parallelism_threads(args.inter_op_threads)
    tf.config.threading.set_intra_op_parallelism_threads(args.intra_op_threads)
    config = {"demo": train_speed.demo_config, "paper": Config}[args.size]()
    _, step, signature = train_speed.build_step(args.stage, config, args.num_artists, args.variant)
    rng = np.random.default_rng(0)
    run = lambda: tf.nest.map_structure(  # noqa: E731
        lambda t: t.numpy(), step(train_speed.random_batch(signature, args.num_artists, rng))
    )
    for _ in range(2):
        run()
    tf.io.gfile.rmtree(args.logdir) if tf.io.gfile.exists(args.logdir) else None
    tf.profiler.experimental.start(args.logdir)
    start = time.perf_counter()
    for _ in range(args.steps):
        run()
    wall = (time.perf_counter() - start) / args.steps
    tf.profiler.experimental.stop()

    by_type, by_kind, by_op = collections.Counter(), collections.Counter(), collections.Counter()
    counts = collections.Counter()
    for op_name, op_type, ps in op_events(args.logdir):
        ms = ps / 1e9 / args.steps
        by_type[op_type] += ms
        by_op[f"{op_name} ({op_type})"] += ms
        counts[op_type] += 1 / args.steps
        by_kind[kind(op_name, op_type)] += ms
    total = sum(by_kind.values())
    print(
        f"{args.size} {args.stage} {args.variant}: wall {1e3 * wall:.1f} ms/step (traced, {args.steps} steps), "
        f"op time summed over threads {total:.1f} ms/step, {sum(counts.values()):.0f} op events/step; "
        f"load average {os.getloadavg()[0]:.2f}"
    )
    print("\n| kind | ms/step | share of op time |\n|---|---|---|")
    for name, ms in by_kind.most_common():
        print(f"| {name} | {ms:.1f} | {100 * ms / total:.0f}% |")
    print("\n| op type | ops/step | ms/step | us/op |\n|---|---|---|---|")
    for op_type, ms in by_type.most_common(args.top):
        print(
            f"| {op_type} | {counts[op_type]:.0f} | {ms:.2f} | {1e3 * ms / counts[op_type]:.0f} |"
        )
    if args.top_ops:  # which layer: a convolution's name says its network and block
        print("\n| op (type) | ms/step | share of op time |\n|---|---|---|")
        for op, ms in by_op.most_common(args.top_ops):
            print(f"| {op} | {ms:.1f} | {100 * ms / total:.1f}% |")


if __name__ == "__main__":
    main()
