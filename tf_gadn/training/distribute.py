"""tf.distribute strategy from the config: one device, MirroredStrategy (all local GPUs, or logical CPUs), or
MultiWorkerMirroredStrategy from TF_CONFIG when one machine is not enough.
"""

from __future__ import annotations

import json
import os

import tensorflow as tf

STRATEGIES = ("default", "mirrored", "multi_worker")


def split_cpu(num_devices: int) -> None:
    """Splits the CPU into `num_devices` logical devices; must run before TensorFlow initialises its devices."""
    if num_devices <= 1:
        return
    cpu = tf.config.list_physical_devices("CPU")[0]
    current = tf.config.get_logical_device_configuration(cpu)
    if current and len(current) == num_devices:
        return
    try:
        tf.config.set_logical_device_configuration(
            cpu, [tf.config.LogicalDeviceConfiguration()] * num_devices
        )
    except RuntimeError as err:
        raise RuntimeError(
            f"cannot split the CPU into {num_devices} devices after TensorFlow has started "
            "(set num_cpu_devices before any TensorFlow op runs)"
        ) from err


def set_threads(inter_op: int, intra_op: int) -> None:
    """TensorFlow's thread pools (0 = its default); they are fixed when the runtime starts, so this runs before any
    op. On a small step sharing 2 cores with other jobs one thread each was faster (docs/notes/issue15_speed2.md)."""
    current = (
        tf.config.threading.get_inter_op_parallelism_threads(),
        tf.config.threading.get_intra_op_parallelism_threads(),
    )
    if current == (inter_op, intra_op):
        return
    try:
        tf.config.threading.set_inter_op_parallelism_threads(inter_op)
        tf.config.threading.set_intra_op_parallelism_threads(intra_op)
    except RuntimeError as err:
        raise RuntimeError(
            f"cannot set TensorFlow's threads to inter-op {inter_op}, intra-op {intra_op} after it has "
            "started (set inter_op_threads/intra_op_threads before any TensorFlow op runs)"
        ) from err


def make_strategy(kind: str, num_cpu_devices: int = 0) -> tf.distribute.Strategy:
    if kind not in STRATEGIES:
        raise ValueError(f"strategy must be one of {STRATEGIES}, got {kind!r}")
    if kind == "multi_worker":
        if "TF_CONFIG" not in os.environ:
            raise ValueError(
                "strategy=multi_worker needs the TF_CONFIG environment variable (cluster and task)"
            )
        # AUTO picks NCCL between GPUs and RING all-reduce on CPU-only workers (loopback tests).
        options = tf.distribute.experimental.CommunicationOptions(
            implementation=tf.distribute.experimental.CommunicationImplementation.AUTO
        )
        return tf.distribute.MultiWorkerMirroredStrategy(communication_options=options)
    split_cpu(num_cpu_devices)
    if kind == "default":
        return tf.distribute.get_strategy()
    gpus = tf.config.list_logical_devices("GPU")
    devices = [d.name for d in gpus] or [d.name for d in tf.config.list_logical_devices("CPU")]
    return tf.distribute.MirroredStrategy(devices)


def is_chief(strategy: tf.distribute.Strategy) -> bool:
    """The worker that writes checkpoints, logs and pictures (every process of a single-machine run is the chief)."""
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or not resolver.task_type:
        return True
    return resolver.task_type == "chief" or (
        resolver.task_type == "worker"
        and resolver.task_id == 0
        and "chief" not in json.loads(os.environ.get("TF_CONFIG", "{}")).get("cluster", {})
    )


def worker_tag(strategy: tf.distribute.Strategy) -> str:
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or not resolver.task_type:
        return "chief"
    return f"{resolver.task_type}_{resolver.task_id}"
