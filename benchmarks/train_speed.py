"""Training speed of each GADN stage at demo and paper size: steps/s, FLOPs per step, and the fraction of this
machine's measured float32 matmul throughput the step reaches.

    /work/venv/bin/python benchmarks/train_speed.py [--sizes demo,paper --steps demo=10,paper=2 --num_artists 8]

Each stage is built as the training loop builds it (`stage_class(name)(config, artist_counts, batch)`, `.compile()`)
and its `train_step` is wrapped in one tf.function with a fixed input signature; batches are random tensors in the
batch contract of tf_gadn/training/stage.py (noise dims from the stage, as tf_gadn/training/loop.py asks for them). One warm-up step
(tracing included) is not timed; then each timed step is measured alone and the median is printed.

FLOPs per step are counted with TensorFlow's flop registry (what tf.compat.v1.profiler's float_operation options use)
on the traced train_step graph: every convolution, matmul, their gradients, the elementwise ops and the optimizer
updates, from static shapes; counted over the nodes that run (see `profiled_flops`), with the profiler's whole-graph
total in brackets. As a check, an analytic count is printed next to it: forward FLOPs of each network from its
Conv2D/Dense kernel shapes (2 x multiply-adds) times the forward and backward passes the stage's train_step makes
(a backward pass = input gradients + weight gradients = 2 forward passes; 1 when only input gradients are needed).
Throughput reference: the median rate of a 2048 x 2048 float32 tf.matmul (2 n^3 FLOPs), timed again right before each
stage. The load average is printed with every row: other processes share this machine's cores.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from absl import flags  # noqa: E402

from tf_gadn.nn.blocks import ResidualBlock  # noqa: E402
from tf_gadn.training import config as config_module  # noqa: E402
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
        if layer.resample == "up":
            shape = (shape[0] * 2, shape[1] * 2, shape[2])
        total, branch = 0, shape
        for conv in layer.branch:
            flops, branch = _layer_flops(conv, branch)
            total += flops
        if layer.projection is not None:
            shortcut = (
                branch[0],
                branch[1],
                shape[2],
            )  # after the stride-2 average pool when going down
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


def matmul_gflops(n: int = 2048, repeats: int = 10) -> float:
    a = tf.random.normal([n, n])
    b = tf.random.normal([n, n])
    matmul = tf.function(lambda x, y: tf.reduce_sum(tf.matmul(x, y)))
    matmul(a, b).numpy()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        matmul(a, b).numpy()
        times.append(time.perf_counter() - start)
    return 2 * n**3 / statistics.median(times) / 1e9


def measure_stage(
    name: str,
    config: Config,
    num_artists: int,
    steps: int,
    reference_gflops: float,
    with_analytic: bool,
) -> dict:
    cls = stage_class(name)
    batch = cls.batch_size(config)
    keras.utils.set_random_seed(config.seed)
    stage = cls(config, [100] * num_artists, batch)
    stage.compile()
    signature = batch_signature(cls, config, batch)
    step_fn = tf.function(stage.train_step, input_signature=[signature])
    every_node, flops = profiled_flops(step_fn.get_concrete_function())
    rng = np.random.default_rng(0)
    start = time.perf_counter()
    tf.nest.map_structure(lambda t: t.numpy(), step_fn(random_batch(signature, num_artists, rng)))
    warmup = time.perf_counter() - start
    times = []
    for _ in range(steps):
        data = random_batch(signature, num_artists, rng)
        start = time.perf_counter()
        tf.nest.map_structure(lambda t: t.numpy(), step_fn(data))
        times.append(time.perf_counter() - start)
    seconds = statistics.median(times)
    return {
        "stage": name,
        "batch": batch,
        "params": sum(int(np.prod(v.shape)) for v in stage.trainable_variables),
        "steps_per_s": 1 / seconds,
        "seconds": seconds,
        "warmup": warmup,
        "gflop": flops / 1e9,
        "graph_gflop": every_node / 1e9,
        "analytic_gflop": analytic_step_flops(stage, config, batch) / 1e9
        if with_analytic
        else None,
        "gflops": flops / seconds / 1e9,
        "fraction": flops / seconds / 1e9 / reference_gflops,
        "steps": steps,
    }


def _load() -> str:
    return "load average " + " ".join(f"{v:.2f}" for v in os.getloadavg())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="demo,paper")
    parser.add_argument(
        "--steps", default="demo=10,paper=2", help="timed steps per size (after 1 warm-up step)"
    )
    parser.add_argument("--stages", default=",".join(chains()["gadn"]))
    parser.add_argument("--num_artists", type=int, default=8)
    parser.add_argument(
        "--analytic", default="demo,paper", help="sizes that also get the analytic FLOP count"
    )
    args = parser.parse_args()
    steps = {k: int(v) for k, v in (item.split("=") for item in args.steps.split(","))}
    configs = {"demo": demo_config(), "paper": Config()}

    print(
        f"{os.cpu_count()} CPU cores, TensorFlow {tf.__version__}, {tf.config.list_physical_devices()[-1].name}; "
        f"{_load()}"
    )
    print(
        f"float32 matmul 2048 x 2048: {matmul_gflops():.1f} GFLOP/s (median of 10; {_load()})\n",
        flush=True,
    )
    # The load from other processes changes by minutes, so each stage is compared with a matmul timed just before it.
    print(
        "| size | stage | batch | trainable params | steps/s | s/step (median of n) | GFLOP/step run (all graph "
        "nodes) | GFLOP/step analytic | GFLOP/s | matmul GFLOP/s just before | of matmul | load avg (1 min) |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for size in args.sizes.split(","):
        config = configs[size]
        for name in args.stages.split(","):
            reference = matmul_gflops()
            r = measure_stage(
                name, config, args.num_artists, steps[size], reference, size in args.analytic
            )
            analytic = f"{r['analytic_gflop']:.2f}" if r["analytic_gflop"] is not None else "-"
            print(
                f"| {size} {config.image_size}px | {name} | {r['batch']} | {r['params'] / 1e6:.1f}M "
                f"| {r['steps_per_s']:.3g} | {r['seconds']:.3g} (n={r['steps']}) "
                f"| {r['gflop']:.2f} ({r['graph_gflop']:.2f}) | {analytic} "
                f"| {r['gflops']:.1f} | {reference:.0f} | {100 * r['fraction']:.0f}% | {os.getloadavg()[0]:.2f} |",
                flush=True,
            )
    print(f"\nmatmul reference again: {matmul_gflops():.1f} GFLOP/s ({_load()})")


if __name__ == "__main__":
    main()
