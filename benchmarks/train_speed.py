"""Training speed of each GADN stage at demo and paper size, in float32 and mixed bfloat16: steps/s, ops and
FLOPs per step, and the share of this machine's measured convolution peak (same precision) the step reaches.

    python benchmarks/train_speed.py [--sizes demo,paper --steps demo=10,paper=2 --precisions float32,bf16
                                      --torch_python /usr/bin/python3 --op_types 12]

Each stage is built as the training loop builds it (`stage_class(name)(config, artist_counts, batch)`, `.compile()`)
under the precision's Keras policy, and its `train_step` is wrapped in one tf.function with a fixed input signature;
batches are random tensors in the batch contract of tf_gadn/training/stage.py. One warm-up step (tracing included) is
not timed; then the precisions' steps are timed interleaved, one step of each in turn (the machine is shared, so load
changes hit both alike), and the median is printed. "steps/s vs float32" is the ratio within that interleaved run.

FLOPs per step are counted with TensorFlow's flop registry (what tf.compat.v1.profiler's float_operation options use)
on the traced train_step graph: every convolution, matmul, their gradients, the elementwise ops and the optimizer
updates, from static shapes; counted over the nodes that run (see `profiled_flops`), with the profiler's whole-graph
total in brackets. As a check, an analytic count is printed next to it: forward FLOPs of each network from its
Conv2D/Dense kernel shapes (2 x multiply-adds) times the forward and backward passes the stage's train_step makes
(a backward pass = input gradients + weight gradients = 2 forward passes; 1 when only input gradients are needed).
"ops/step" counts the graph nodes that run; seconds per step / ops is the time per op, the overhead floor of a small
step. Peaks (`peaks`): the median rate of a 3x3 convolution 16 x 64 x 64 x 128 -> 128 and of a 2048 x 2048 matmul,
float32 and bfloat16, timed again right before each stage; a step's share is of the convolution peak of its precision.
With --torch_python, the PyTorch twin (benchmarks/torch_reference.py) of the same stage is timed right after, in the
given interpreter, and the tf_gadn / PyTorch steps/s ratio printed. The load average is printed with every row.
"""

from __future__ import annotations

import argparse
import collections
import os
import statistics
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

# before TensorFlow loads: the package's oneDNN default, as training has it
import tf_gadn  # noqa: E402,F401

# isort: split

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from absl import flags  # noqa: E402

from tf_gadn.nn.blocks import ResidualBlock  # noqa: E402
from tf_gadn.training import averaging  # noqa: E402
from tf_gadn.training import config as config_module  # noqa: E402
from tf_gadn.training import precision as precision_module  # noqa: E402
from tf_gadn.training.config import Config  # noqa: E402
from tf_gadn.training.registry import chains, stage_class  # noqa: E402

DEMO_FLAGS = os.path.join(os.path.dirname(__file__), "..", "configs", "gadn", "demo.flags")

# Forward/backward passes per train_step, per network: (forward passes, backward passes with weight gradients,
# backward passes with input gradients only). Read off the stages' train_step code:
#   stage 1: E forward once, G forward for the reconstruction and for C1's input (shared by both updates); C1 forward
#            in its own step and in E/G/S's; C1 backward with weights, then to its input only; G twice and E backward
#            with weights.
#   C2 pre-training: C2 forward + backward.
#   stage 2: E forward on x and on G's output; G forward once (shared by both updates); D and C2 each on real and
#            fake with weights, then on fake again for G/S; G backward with weights, D, C2 and the frozen E backward
#            to their inputs only.
PASSES = {
    "gadn_stage1": {"encoder": (1, 1, 0), "generator": (2, 2, 0), "classifier1": (2, 1, 1)},
    "c2_pretrain": {"classifier2": (1, 1, 0)},
    "gadn_stage2": {
        "encoder": (2, 0, 1),
        "generator": (1, 1, 0),
        "discriminator": (3, 2, 1),
        "classifier2": (3, 2, 1),
    },
}


def demo_config() -> Config:
    """The Config the demo flagfile (configs/gadn/demo.flags) gives, parsed by the same absl flags as train."""
    flag_values = flags.FlagValues()
    config_module.define_flags(flag_values)
    flag_values(["train_speed", f"--flagfile={DEMO_FLAGS}"])
    return Config.from_flags(flag_values)


# ---- analytic forward FLOPs ---------------------------------------------------------------------------------------
def _layer_flops(layer, shape):
    """(forward FLOPs of one example, output shape without batch) for the layers the GADN networks are made of."""
    if isinstance(layer, keras.Sequential):
        total = 0
        for sub in layer.layers:
            flops, shape = _layer_flops(sub, shape)
            total += flops
        return total, shape
    if isinstance(layer, ResidualBlock):
        source = shape
        # Folded into a transposed convolution (upsampled_conv), an up block's first 3x3 convolution costs 16/36 of
        # the upsampled one, and its 1x1 projection runs on the small map.
        folded = layer.resample == "up" and layer.upsample == "transposed"
        if layer.resample == "up":
            shape = (shape[0] * 2, shape[1] * 2, shape[2])
        total, branch = 0, shape
        for i, conv in enumerate(layer.branch):
            flops, branch = _layer_flops(conv, branch)
            total += flops * 16 // 36 if folded and i == 0 else flops
        if layer.projection is not None:
            # after the stride-2 average pool when going down; before the upsampling when folded
            shortcut = source if folded else (branch[0], branch[1], shape[2])
            total += _layer_flops(layer.projection, shortcut)[0]
        return total, branch
    if isinstance(layer, keras.layers.Conv2D):
        k_h, k_w, c_in, c_out = layer.kernel.shape
        stride = layer.strides[0]
        out = (-(-shape[0] // stride), -(-shape[1] // stride), c_out)
        return 2 * out[0] * out[1] * k_h * k_w * c_in * c_out, out
    if isinstance(layer, keras.layers.Dense):
        c_in, c_out = layer.kernel.shape
        return 2 * c_in * c_out, (c_out,)
    if isinstance(layer, keras.layers.Flatten):
        return 0, (int(np.prod(shape)),)
    if isinstance(layer, keras.layers.Reshape):
        return 0, tuple(layer.target_shape)
    return 0, shape  # activations: not counted


def network_flops(network, config: Config) -> int:
    """Forward FLOPs of one example through a GADN network (trunk + its input/output dense layers)."""
    image = (config.image_size, config.image_size, 3)
    if hasattr(network, "mean_head"):  # E: trunk, then the mean and std heads
        flops, shape = _layer_flops(network.trunk, image)
        return (
            flops
            + _layer_flops(network.mean_head, shape)[0]
            + _layer_flops(network.std_head, shape)[0]
        )
    if hasattr(network, "out"):  # C1, C2, D
        flops, shape = _layer_flops(network.trunk, image)
        return flops + _layer_flops(network.out, shape)[0]
    return _layer_flops(network.trunk, (config.content_dim + config.style_dim,))[0]  # G


def analytic_step_flops(stage, config: Config, batch: int) -> int:
    networks = stage.networks()
    total = 0
    for name, (forward, backward_full, backward_input) in PASSES[stage.NAME].items():
        total += network_flops(networks[name], config) * (
            forward + 2 * backward_full + backward_input
        )
    return total * batch


# ---- measurement --------------------------------------------------------------------------------------------------
def batch_signature(cls, config: Config, batch: int) -> dict:
    size = config.image_size
    signature = {
        "image": tf.TensorSpec([batch, size, size, 3], tf.float32),
        "artist": tf.TensorSpec([batch], tf.int32),
        "other_artist": tf.TensorSpec([batch], tf.int32),
    }
    if cls.noise_dim(config):
        signature["noise"] = tf.TensorSpec([batch, cls.noise_dim(config)], tf.float32)
    if cls.uniform_dim(config):
        signature["uniform"] = tf.TensorSpec([batch, cls.uniform_dim(config)], tf.float32)
    return signature


def random_batch(signature: dict, num_artists: int, rng: np.random.Generator) -> dict:
    batch_size = signature["artist"].shape[0]
    artist = rng.integers(num_artists, size=batch_size)
    other = (
        artist + rng.integers(1, num_artists, size=batch_size)
    ) % num_artists  # a' != a (stage 1 needs it)
    batch = {
        "image": rng.uniform(-1, 1, signature["image"].shape),
        "artist": artist,
        "other_artist": other,
    }
    if "noise" in signature:
        batch["noise"] = rng.standard_normal(signature["noise"].shape)
    if "uniform" in signature:
        batch["uniform"] = rng.uniform(0, 1, signature["uniform"].shape)
    return {k: tf.constant(v, dtype=signature[k].dtype) for k, v in batch.items()}


def profiled_flops(concrete_function) -> tuple[int, int]:
    """(FLOPs of every node of the traced graph, FLOPs of the nodes that run), both from TensorFlow's flop registry.

    The profiler counts every node, including gradient nodes nobody uses (tape.gradient emits both the input and the
    filter gradient of a convolution even when one is needed, and backprops through networks whose variables only
    happened to be read inside the tape); TensorFlow prunes those before running the function. The second number
    keeps only the nodes the function's outputs and stateful updates depend on, which is what executes."""
    from tensorflow.python.framework import ops
    from tensorflow.python.profiler import model_analyzer, option_builder

    tf.get_logger().setLevel("ERROR")  # the v1 profiler warns about its own deprecated helpers
    graph = concrete_function.graph
    options = option_builder.ProfileOptionBuilder.float_operation()
    options["output"] = "none"
    every_node = int(model_analyzer.profile(graph, options=options).total_float_ops)
    live, pending = set(), [t.op for t in graph.outputs] + list(graph.control_outputs)
    while pending:
        op = pending.pop()
        if op not in live:
            live.add(op)
            pending += [t.op for t in op.inputs] + list(op.control_inputs)
    running = 0
    for op in live:
        try:
            running += int(ops.get_stats_for_node_def(graph, op.node_def, "flops").value or 0)
        except (
            ValueError
        ):  # no shape-based count registered for this op type (the profiler skips them too)
            pass
    return every_node, running


PRECISIONS = {"float32": "float32", "bf16": "mixed_bfloat16"}
# A variant is a precision with options: "bf16+fused" (--fused_adam), "float32+xla" (the step XLA-compiled),
# "bf16+ema" (the step followed by the --ema_decay update of the stage's networks, as the training loop runs it),
# "float32+repeat" (--upsample_conv=repeat: generators upsample, then convolve, as before session 13).
OPTIONS = ("fused", "xla", "ema", "repeat")


def _median_seconds(fn, repeats: int) -> float:
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def matmul_gflops(n: int = 2048, repeats: int = 10, dtype=tf.float32) -> float:
    a = tf.cast(tf.random.normal([n, n]), dtype)
    b = tf.cast(tf.random.normal([n, n]), dtype)
    matmul = tf.function(lambda x, y: tf.reduce_sum(tf.cast(tf.matmul(x, y), tf.float32)))
    return 2 * n**3 / _median_seconds(lambda: matmul(a, b).numpy(), repeats) / 1e9


def conv_gflops(repeats: int = 10, dtype=tf.float32) -> float:
    """A 3x3 convolution the size of the trunk's middle levels: 16 x 64 x 64 x 128 -> 128 channels, SAME."""
    x = tf.cast(tf.random.normal([16, 64, 64, 128]), dtype)
    w = tf.cast(tf.random.normal([3, 3, 128, 128]), dtype)
    conv = tf.function(
        lambda x, w: tf.reduce_sum(tf.cast(tf.nn.conv2d(x, w, 1, "SAME"), tf.float32))
    )
    return (
        2
        * 16
        * 64
        * 64
        * 9
        * 128
        * 128
        / _median_seconds(lambda: conv(x, w).numpy(), repeats)
        / 1e9
    )


def peaks() -> dict[str, float]:
    """This machine's throughput right now, per precision: the reference each step's GFLOP/s is a share of (the
    conv, since the networks are convolutional; the matmul is printed too)."""
    return {
        "float32": conv_gflops(),
        "bf16": conv_gflops(dtype=tf.bfloat16),
        "matmul float32": matmul_gflops(),
        "matmul bf16": matmul_gflops(dtype=tf.bfloat16),
    }


def build_step(name: str, config: Config, num_artists: int, variant: str):
    """(stage, tf.function of its train_step, signature), the stage built under the variant's Keras policy."""
    precision, *options = variant.split("+")
    unknown = set(options) - set(OPTIONS)
    if precision not in PRECISIONS or unknown:
        raise ValueError(
            f"variant {variant!r}: precision in {list(PRECISIONS)}, options in {OPTIONS}"
        )
    cls = stage_class(name)
    batch = cls.batch_size(config)
    keras.mixed_precision.set_global_policy(PRECISIONS[precision])
    try:
        keras.utils.set_random_seed(config.seed)
        stage = cls(
            config.replace(
                fused_adam="fused" in options,
                upsample_conv="repeat" if "repeat" in options else config.upsample_conv,
            ),
            [100] * num_artists,
            batch,
        )
        stage.compile()
    finally:
        keras.mixed_precision.set_global_policy("float32")
    signature = batch_signature(cls, config, batch)
    train_step = stage.train_step
    if "ema" in options:
        average = averaging.WeightAverage(stage.trained_networks(), decay=0.998)
        done = tf.Variable(0, dtype=tf.int64, trainable=False)

        def train_step(batch):
            results = stage.train_step(batch)
            average.update(done.assign_add(1))
            return results

    step = tf.function(train_step, input_signature=[signature], jit_compile="xla" in options)
    return stage, step, signature


def live_ops(concrete_function) -> collections.Counter:
    """Op type -> count of the graph nodes the step runs (what its outputs and stateful updates depend on): per-op
    cost times their number is the step's overhead floor."""
    graph = concrete_function.graph
    live, pending = set(), [t.op for t in graph.outputs] + list(graph.control_outputs)
    while pending:
        op = pending.pop()
        if op not in live:
            live.add(op)
            pending += [t.op for t in op.inputs] + list(op.control_inputs)
    return collections.Counter(op.type for op in live)


def measure_stage(
    name: str,
    config: Config,
    num_artists: int,
    steps: int,
    precisions: list[str],
    with_analytic: bool,
    count_flops: bool = True,
) -> list[dict]:
    """Each precision's step of the stage, timed interleaved (one step of each in turn, so the other processes' load
    hits both alike); median seconds per step."""
    built = {p: build_step(name, config, num_artists, p) for p in precisions}
    rng = np.random.default_rng(0)
    rows = {}
    for precision, (stage, step_fn, signature) in built.items():
        concrete = step_fn.get_concrete_function()
        every_node, flops = profiled_flops(concrete) if count_flops else (0, 0)
        start = time.perf_counter()
        tf.nest.map_structure(
            lambda t: t.numpy(), step_fn(random_batch(signature, num_artists, rng))
        )
        rows[precision] = {
            "stage": name,
            "precision": precision,
            "batch": stage.global_batch_size,
            "params": sum(int(np.prod(v.shape)) for v in stage.trainable_variables),
            "warmup": time.perf_counter() - start,
            "gflop": flops / 1e9,
            "graph_gflop": every_node / 1e9,
            "op_types": live_ops(concrete),
            "analytic_gflop": analytic_step_flops(stage, config, stage.global_batch_size) / 1e9
            if with_analytic and stage.NAME in PASSES
            else None,
            "times": [],
            "steps": steps,
        }
    for _ in range(steps):
        for precision, (_, step_fn, signature) in built.items():
            data = random_batch(signature, num_artists, rng)
            start = time.perf_counter()
            tf.nest.map_structure(lambda t: t.numpy(), step_fn(data))
            rows[precision]["times"].append(time.perf_counter() - start)
    for row in rows.values():
        row["seconds"] = statistics.median(row.pop("times"))
        row["steps_per_s"] = 1 / row["seconds"]
        row["gflops"] = row["gflop"] / row["seconds"]
        row["ops"] = sum(row["op_types"].values())
    return list(rows.values())


def torch_steps_per_s(
    python: str,
    name: str,
    config: Config,
    num_artists: int,
    steps: int,
    precisions: list[str],
    threads: int = 0,
) -> dict | None:
    """The PyTorch twin's steps/s per precision (benchmarks/torch_reference.py run by `python`, which may be another
    interpreter than this one: torch and TensorFlow need not share an environment); None when it cannot run."""
    import json
    import subprocess

    if name not in ("gadn_stage1", "c2_pretrain", "gadn_stage2"):
        return None
    cls = stage_class(name)
    command = [
        python,
        os.path.join(os.path.dirname(os.path.abspath(__file__)), "torch_reference.py"),
        f"--stage={name}",
        f"--image_size={config.image_size}",
        f"--channels={','.join(map(str, config.gadn_channels))}",
        f"--blocks={','.join(map(str, config.gadn_blocks))}",
        f"--fc_width={config.gadn_fc_width}",
        f"--content_dim={config.content_dim}",
        f"--style_dim={config.style_dim}",
        f"--num_artists={num_artists}",
        f"--batch={cls.batch_size(config)}",
        f"--steps={steps}",
        f"--precisions={','.join(precisions)}",
        f"--threads={threads}",
        f"--upsample={config.upsample_conv}",
    ]
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0:
        print(f"  (PyTorch twin failed: {result.stderr.strip().splitlines()[-1:]})", flush=True)
        return None
    return json.loads(result.stdout.strip().splitlines()[-1])


def peak_rss_gib(size: str, name: str, precision: str, batch: int, num_artists: int) -> float:
    """Peak resident memory of a fresh process that builds the stage at `batch` and runs two steps (GiB)."""
    import subprocess
    import sys

    code = (
        "import resource, sys; sys.argv = ['x']; import train_speed as t; "
        f"config = {{'demo': t.demo_config, 'paper': t.Config}}[{size!r}]()"
        f".replace({stage_class(name).CONFIG_PREFIX}_batch_size={batch}); "
        f"_, step, sig = t.build_step({name!r}, config, {num_artists}, {precision!r}); "
        "import numpy as np; rng = np.random.default_rng(0); "
        f"[step(t.random_batch(sig, {num_artists}, rng)) for _ in range(2)]; "
        "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=os.path.dirname(os.path.abspath(__file__)),
        capture_output=True,
        text=True,
    )
    if result.returncode != 0:
        raise RuntimeError(result.stderr[-2000:])
    return int(result.stdout.strip().splitlines()[-1]) / 2**20  # ru_maxrss is in KiB on Linux


MIN_GROWTH_GIB = 0.05  # peak RSS of two processes at the same batch differs by up to ~0.1 GiB


def memory_table(size: str, stages: list[str], precisions: list[str], num_artists: int) -> None:
    """Peak RSS per stage and precision at the configured batch B and at 2B; the line through both gives the largest
    batch that fits in 24 GiB (without --accumulate_steps; with K micro-batches the activations are those of B/K)."""
    config = {"demo": demo_config, "paper": Config}[size]()
    print(
        f"\n| size | stage | precision | batch B | peak RSS at B (GiB) | at 2B (GiB) | per example (GiB) "
        f"| largest batch in 24 GiB |\n|{'---|' * 8}"
    )
    for name in stages:
        batch = stage_class(name).batch_size(config)
        for precision in precisions:
            one = peak_rss_gib(size, name, precision, batch, num_artists)
            two = peak_rss_gib(size, name, precision, 2 * batch, num_artists)
            growth, extra = two - one, batch
            if (
                growth < MIN_GROWTH_GIB
            ):  # the allocator's noise hides B more examples: fit B..4B instead
                growth = peak_rss_gib(size, name, precision, 4 * batch, num_artists) - one
                extra = 3 * batch
            per_example = growth / extra
            largest = (
                str(int((24 - (one - per_example * batch)) / per_example))
                if growth >= MIN_GROWTH_GIB
                else "- (no growth up to 4B)"
            )
            print(
                f"| {size} {config.image_size}px | {name} | {precision} | {batch} | {one:.2f} | {two:.2f} "
                f"| {per_example:.3f}{'' if extra == batch else ' (B..4B)'} | {largest} |",
                flush=True,
            )


def _env() -> str:
    return " ".join(
        f"{k}={v}"
        for k, v in sorted(os.environ.items())
        if k.startswith(("TF_ONEDNN", "TF_ENABLE_ONEDNN", "ONEDNN_", "TF_XLA", "OMP_"))
    )


def _load() -> str:
    return "load average " + " ".join(f"{v:.2f}" for v in os.getloadavg())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="demo,paper")
    parser.add_argument(
        "--steps", default="demo=10,paper=2", help="timed steps per size (after 1 warm-up step)"
    )
    parser.add_argument("--stages", default=",".join(chains()["gadn"]))
    parser.add_argument(
        "--precisions",
        default="float32,bf16",
        help="variants timed interleaved: float32 or bf16, optionally +fused (--fused_adam), +xla, +ema (--ema_decay)",
    )
    parser.add_argument("--num_artists", type=int, default=8)
    parser.add_argument(
        "--analytic", default="demo,paper", help="sizes that also get the analytic FLOP count"
    )
    parser.add_argument(
        "--torch_python",
        default="",
        help="interpreter with torch to time the PyTorch twin with (e.g. the running one: "
        "pip install -e .[bench]); empty = no twin",
    )
    parser.add_argument(
        "--op_types", type=int, default=0, help="print the N most frequent op types of each step"
    )
    parser.add_argument(
        "--memory", default="", help="sizes to measure peak RSS for (a fresh process per row)"
    )
    parser.add_argument(
        "--inter_op_threads",
        type=int,
        default=0,
        help="TensorFlow inter-op threads (0 = its default)",
    )
    parser.add_argument(
        "--intra_op_threads",
        type=int,
        default=0,
        help="TensorFlow intra-op threads (0 = its default)",
    )
    parser.add_argument(
        "--no_flops", action="store_true", help="skip the profiler's FLOP count (faster start)"
    )
    args = parser.parse_args()
    # Thread pools are fixed when TensorFlow's runtime starts: before any op runs (so the variants of one run share
    # them; compare thread settings across adjacent runs).
    tf.config.threading.set_inter_op_parallelism_threads(args.inter_op_threads)
    tf.config.threading.set_intra_op_parallelism_threads(args.intra_op_threads)
    steps = {k: int(v) for k, v in (item.split("=") for item in args.steps.split(","))}
    configs = {"demo": demo_config(), "paper": Config()}
    precisions = args.precisions.split(",")

    print(
        f"{os.cpu_count()} CPU cores ({_cpu_model()}; bfloat16 flags: "
        f"{' '.join(sorted(set(precision_module.CPU_BF16_FLAGS) & precision_module.cpu_flags())) or 'none'}), "
        f"TensorFlow {tf.__version__}; threads inter-op {args.inter_op_threads or 'default'}, intra-op "
        f"{args.intra_op_threads or 'default'}; oneDNN/XLA env: {_env() or 'none'}; {_load()}"
    )
    for size in filter(None, args.memory.split(",")):
        memory_table(size, args.stages.split(","), precisions, args.num_artists)
        return
    print(
        "| size | stage | batch | trainable params | precision | steps/s | s/step (median of n) | ops/step "
        "| us/op | GFLOP/step run (all graph nodes) | GFLOP/step analytic | GFLOP/s | conv peak GFLOP/s "
        "just before | of peak | steps/s vs float32 | PyTorch steps/s | tf_gadn / PyTorch | load avg (1 min) |"
    )
    print("|" + "---|" * 18)
    for size in args.sizes.split(","):
        config = configs[size]
        for name in args.stages.split(","):
            # The other processes' load changes by minutes: each stage is compared with peaks timed just before it.
            peak = peaks()
            rows = measure_stage(
                name,
                config,
                args.num_artists,
                steps[size],
                precisions,
                size in args.analytic,
                not args.no_flops,
            )
            torch_rates = (
                torch_steps_per_s(
                    args.torch_python,
                    name,
                    config,
                    args.num_artists,
                    steps[size],
                    sorted({p.split("+")[0] for p in precisions}),
                    args.intra_op_threads,
                )
                if args.torch_python
                else None
            )
            base = {r["precision"]: r["steps_per_s"] for r in rows}
            for r in rows:
                analytic = f"{r['analytic_gflop']:.2f}" if r["analytic_gflop"] is not None else "-"
                speedup = (
                    f"{r['steps_per_s'] / base['float32']:.2f}x"
                    if r["precision"] != "float32" and "float32" in base
                    else "-"
                )
                basic = r["precision"].split("+")[0]
                theirs = (torch_rates or {}).get(basic)
                ratio = f"{r['steps_per_s'] / theirs:.2f}" if theirs else "-"
                print(
                    f"| {size} {config.image_size}px | {name} | {r['batch']} | {r['params'] / 1e6:.1f}M "
                    f"| {r['precision']} | {r['steps_per_s']:.3g} | {r['seconds']:.3g} (n={r['steps']}) "
                    f"| {r['ops']} | {1e6 * r['seconds'] / r['ops']:.0f} "
                    f"| {r['gflop']:.2f} ({r['graph_gflop']:.2f}) | {analytic} "
                    f"| {r['gflops']:.1f} | {peak[basic]:.0f} "
                    f"| {100 * r['gflops'] / peak[basic]:.0f}% | {speedup} "
                    f"| {f'{theirs:.3g}' if theirs else '-'} "
                    f"| {ratio} "
                    f"| {os.getloadavg()[0]:.2f} |",
                    flush=True,
                )
            for r in rows if args.op_types else ():
                common = ", ".join(f"{t} {n}" for t, n in r["op_types"].most_common(args.op_types))
                print(f"  {name} {r['precision']} ops: {common}", flush=True)
            print(
                "peaks just before (GFLOP/s): "
                + ", ".join(f"{k} {v:.0f}" for k, v in peak.items()),
                flush=True,
            )


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown CPU"


if __name__ == "__main__":
    main()
