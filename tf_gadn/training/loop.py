"""The one training loop every stage of both papers runs in: tf.distribute, tf.data, checkpoints, exact resume,
a guard against non-finite losses, TensorBoard scalars and image grids, PNG sample grids and a progress bar.

Stages differ only in their `train_step` (see tf_gadn/training/stage.py); this module never branches on a stage name.
Exact resume: the input stream is a pure function of (seed, step) (tf_gadn/data/pipeline.py), and weights, optimizer
slots and the step are checkpointed, so a run killed after step k and resumed computes the same steps k+1... it would
have computed. A non-finite loss stops the run before anything is saved, and so do non-finite weights (checked before
every save, since an update can turn weights into NaN while the loss it was computed from is still finite), so every
checkpoint the loop writes is a good one. Restoring falls back from a damaged newest checkpoint to the newest one that
restores (checkpoints.restore_newest); leftovers of a killed save are removed before anything is restored.
"""

from __future__ import annotations

import contextlib
import math
import os
import signal
import sys
import threading
import time

import keras
import tensorflow as tf

from tf_gadn.data import pipeline, records
from tf_gadn.evaluation import transfer_eval, visualize
from tf_gadn.training import averaging, checkpoints, collapse, distribute, precision, registry
from tf_gadn.training.config import Config
from tf_gadn.training.registry import stage_class

SAMPLE_BATCH = 8


DONE_MARKER = "DONE"


class NonFiniteLossError(RuntimeError):
    """A loss became NaN or Inf; training stopped without saving."""


class NonFiniteWeightsError(NonFiniteLossError):
    """A weight or optimizer slot became NaN or Inf; training stopped without saving it."""


class TrainingInterrupted(KeyboardInterrupt):
    """SIGINT/SIGTERM arrived: the step in flight finished, a checkpoint was saved, and the run stopped."""


@contextlib.contextmanager
def _stop_requests():
    """Turns SIGINT/SIGTERM into a flag checked between steps, so a kill never lands halfway through an update."""
    requested = threading.Event()
    if threading.current_thread() is not threading.main_thread():
        yield requested
        return
    previous = {
        sig: signal.signal(sig, lambda *_: requested.set())
        for sig in (signal.SIGINT, signal.SIGTERM)
    }
    try:
        yield requested
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def stage_dataset(config: Config, cls, batch_size: int, start_step: int = 0, **options):
    """The training images of stage class `cls` as it reads them (its colour space, noise, a' choice), `batch_size`
    per batch; `options` go to pipeline.make_dataset (cache, sharding across input pipelines)."""
    return pipeline.make_dataset(
        config.data_dir,
        "train",
        global_batch_size=batch_size,
        image_size=config.image_size,
        color=cls.COLOR,
        seed=config.seed,
        start_step=start_step,
        noise_dim=cls.noise_dim(config),
        uniform_dim=cls.uniform_dim(config),
        distinct_other_artist=cls.distinct_other_artist(config),
        **{"mirror": config.mirror_augment, **options},
    )


def _dataset_fn(config: Config, cls, global_batch: int, start_step: int):
    """Per-input-pipeline dataset: consecutive per-replica batches, so the replicas of step t together hold exactly
    the examples a single device would see as its global batch t (same per-example noise, same a')."""

    def make(input_context: tf.distribute.InputContext) -> tf.data.Dataset:
        per_replica = input_context.get_per_replica_batch_size(global_batch)
        replicas_here = input_context.num_replicas_in_sync // input_context.num_input_pipelines
        return stage_dataset(
            config,
            cls,
            per_replica,
            start_step=start_step * replicas_here,
            cache=config.cache,
            num_workers=input_context.num_input_pipelines,
            worker_index=input_context.input_pipeline_id,
        )

    return make


def eval_dataset(config: Config, cls, batch_size: int = 32) -> tf.data.Dataset:
    """The train split once, in file order, in the stage's colour space (statistics, sample grids, evaluation)."""
    return stage_dataset(
        config, cls, batch_size, shuffle=False, repeat=False, drop_remainder=False, mirror=False
    )


def build_stage(
    config: Config, stage_name: str, strategy: tf.distribute.Strategy, artists: list[dict]
):
    """The stage, compiled, under the strategy, with its checkpoint object."""
    cls = stage_class(stage_name)
    keras.utils.set_random_seed(
        config.seed
    )  # identical initial weights for the same seed (resume, replica tests)
    # bfloat16 has float32's range, so no loss scaling is needed; networks return float32 for the losses.
    keras.mixed_precision.set_global_policy(precision.policy_name(config.mixed_precision))
    emulated = precision.emulation_warning(config.mixed_precision)
    if emulated:
        print(f"[{stage_name}] {emulated}", file=sys.stderr, flush=True)
    per_replica = cls.batch_size(config) // strategy.num_replicas_in_sync
    if per_replica % config.accumulate_steps:
        raise ValueError(
            f"accumulate_steps={config.accumulate_steps} must divide each replica's batch of {per_replica} "
            f"({stage_name}: {cls.batch_size(config)} over {strategy.num_replicas_in_sync} replicas)"
        )
    with strategy.scope():
        stage = cls(config, [a["count"] for a in artists], cls.batch_size(config))
        stage.compile()
        step = tf.Variable(0, dtype=tf.int64, trainable=False, name="step")
        # not a Keras-tracked attribute: the average is not part of the stage's own weights
        stage.weight_average = (
            averaging.WeightAverage(stage.trained_networks(), config.ema_decay)
            if config.ema_decay
            else None
        )
        ckpt = checkpoints.stage_checkpoint(
            step, stage.networks(), stage.optimizers, stage.averages()
        )
    return stage, step, ckpt


def _restore_or_inherit(config: Config, stage, ckpt, ckpt_dir: str, check) -> str | None:
    """Restores the stage's own newest good checkpoint (returned), or else inherits the earlier stages' networks.
    The learning rates stay the configured ones: Keras keeps each rate in an optimizer variable, so a restore would
    otherwise bring back the checkpoint's rate and a rerun with a lower rate (the advice after a non-finite stop)
    would silently train with the old one."""
    if config.resume:
        configured = {
            name: optimizer.learning_rate.numpy() for name, optimizer in stage.optimizers.items()
        }
        restored = checkpoints.restore_newest(ckpt, ckpt_dir, check, move_aside=True)
        for name, rate in configured.items():
            stage.optimizers[name].learning_rate.assign(rate)
        if restored is not None:
            return restored
    networks = stage.networks()
    for earlier, names in type(stage).INHERITS.items():
        checkpoints.restore_networks(
            config.inherit_dir or config.model_dir,
            earlier,
            {name: networks[name] for name in names},
        )
    stage.after_inheriting(config.inherit_dir or config.model_dir)
    if stage.weight_average is not None:
        stage.weight_average.reset()
    return None


_ADVICE = "Lower the learning rates or check the data, then rerun (--resume continues from that checkpoint)."


def _check_finite(values: dict[str, float], step: int, last_good: str | None) -> None:
    bad = {k: v for k, v in values.items() if not math.isfinite(v)}
    if bad:
        raise NonFiniteLossError(
            f"non-finite training value(s) {bad} at step {step}; stopped without saving. "
            f"Last good checkpoint: {last_good or 'none'}. {_ADVICE}"
        )


def _save(manager, step: int, check, last_good: str | None) -> str:
    """Saves the step's checkpoint if every weight and slot is finite (and returns it); else stops without saving."""
    bad = check.failures()
    if bad:
        raise NonFiniteWeightsError(
            f"non-finite weights after step {step} ({bad}); stopped without saving. "
            f"Last good checkpoint: {last_good or 'none'}. {_ADVICE}"
        )
    return manager.save(checkpoint_number=step)


def due(current: int, every: int, total_steps: int) -> bool:
    """Whether a periodic action runs after step `current` (every `every` steps, and after the last step)."""
    return current % every == 0 or current == total_steps


class Clock:
    """Steps per second since the first step of this process (a resumed run counts from where it resumed)."""

    def __init__(self, start: int):
        self.start, self.started = start, time.time()

    def restart(self) -> None:
        self.started = time.time()

    def rate(self, current: int) -> float:
        return (current - self.start) / (time.time() - self.started)


def schedule_factor(schedule: str, step: int, total_steps: int, warmup_steps: int = 0) -> float:
    """The multiple of the configured learning rates used for step `step` (1-based) of `total_steps`: the schedule,
    times a linear warm-up (step / warmup_steps) over the first `warmup_steps` steps."""
    warmup = min(1.0, step / warmup_steps) if warmup_steps > 0 else 1.0
    if schedule == "constant":
        return warmup
    if schedule == "cosine":
        return warmup * 0.5 * (1.0 + math.cos(math.pi * (step - 1) / max(total_steps, 1)))
    raise ValueError(f"unknown --lr_schedule {schedule!r} (constant | cosine)")


class LearningRates(keras.callbacks.Callback):
    """--lr_schedule and --lr_warmup_steps: sets every optimizer's rate before each step from the step number alone,
    so a resumed run continues the same curve (the configured rates are re-read on every restore, see
    _restore_or_inherit)."""

    def __init__(
        self, optimizers: dict, schedule: str, start: int, total_steps: int, warmup_steps: int = 0
    ):
        super().__init__()
        self.optimizers, self.schedule, self.total_steps = optimizers, schedule, total_steps
        self.warmup_steps = warmup_steps
        self.configured = {name: float(o.learning_rate.numpy()) for name, o in optimizers.items()}
        self.set_for(start + 1)

    def set_for(self, step: int) -> None:
        factor = schedule_factor(self.schedule, step, self.total_steps, self.warmup_steps)
        for name, optimizer in self.optimizers.items():
            optimizer.learning_rate.assign(self.configured[name] * factor)

    def on_train_batch_end(self, batch, logs=None):
        self.set_for(batch + 1)


class Checkpointing(keras.callbacks.Callback):
    """Saves a checkpoint every `every` steps and after the last one, each only if every weight is finite; remembers
    the last good one (what every error message names)."""

    def __init__(self, manager, check, last_good: str | None, every: int, total_steps: int):
        super().__init__()
        self.manager, self.check, self.last_good = manager, check, last_good
        self.every, self.total_steps = every, total_steps

    def save(self, current: int) -> str:
        self.last_good = _save(self.manager, current, self.check, self.last_good)
        return self.last_good

    def on_train_batch_end(self, batch, logs=None):
        if due(batch, self.every, self.total_steps):
            self.save(batch)


class NonFiniteGuard(keras.callbacks.Callback):
    """Stops the run (NonFiniteLossError) at a non-finite training value, before that step is saved."""

    def __init__(self, saver: Checkpointing):
        super().__init__()
        self.saver = saver

    def on_train_batch_end(self, batch, logs=None):
        _check_finite(logs, batch, self.saver.last_good)


class Logging(keras.callbacks.Callback):
    """Every `every` steps: TensorBoard scalars, the trackers reset, collapse warnings (stderr) and, in a log file, a
    progress line."""

    def __init__(
        self,
        stage,
        stage_name: str,
        writer,
        clock: Clock,
        every: int,
        total_steps: int,
        monitor,
        print_lines: bool,
    ):
        super().__init__()
        self.stage, self.stage_name, self.writer, self.clock = stage, stage_name, writer, clock
        self.every, self.total_steps, self.monitor, self.print_lines = (
            every,
            total_steps,
            monitor,
            print_lines,
        )

    def on_train_batch_end(self, batch, logs=None):
        if not due(batch, self.every, self.total_steps):
            return
        with self.writer.as_default(step=batch):
            for name, value in logs.items():
                tf.summary.scalar(f"{self.stage_name}/{name}", value)
            tf.summary.scalar(f"{self.stage_name}/steps_per_second", self.clock.rate(batch))
        for metric in self.stage.tracker.values():
            metric.reset_state()
        for warning in self.monitor.observe(batch, logs) if self.monitor is not None else ():
            print(warning, file=sys.stderr, flush=True)
        if self.print_lines:
            print(
                f"[{self.stage_name}] step {batch}/{self.total_steps} ({self.clock.rate(batch):.1f} steps/s) "
                f"{summarize(logs)}",
                flush=True,
            )


class ProgressBar(keras.callbacks.Callback):
    """A live keras progress bar (on a terminal)."""

    def __init__(self, bar: keras.utils.Progbar):
        super().__init__()
        self.bar = bar

    def on_train_batch_end(self, batch, logs=None):
        self.bar.update(batch, list(logs.items()))


class TransferEval(keras.callbacks.Callback):
    """--eval_every: the transfer metrics of the networks being trained (TensorBoard and `<stage>/metrics.csv`)."""

    def __init__(
        self, probe, stage, stage_dir: str, stage_name: str, writer, every: int, total_steps: int
    ):
        super().__init__()
        self.probe, self.stage, self.stage_dir, self.stage_name, self.writer = (
            probe,
            stage,
            stage_dir,
            stage_name,
            writer,
        )
        self.every, self.total_steps = every, total_steps
        self.style_watch = collapse.StyleWatch(stage_name)

    def on_train_batch_end(self, batch, logs=None):
        if due(batch, self.every, self.total_steps):
            with self.stage.averaged_weights():
                numbers = self.probe(self.stage.transfer_model())
            write_eval(numbers, self.stage_dir, self.stage_name, batch, self.writer)
            for warning in self.style_watch.observe(batch, numbers):
                print(warning, file=sys.stderr, flush=True)  # where the collapse warnings go


class SampleGrids(keras.callbacks.Callback):
    """--sample_every: the stage's sample grid as a PNG and a TensorBoard image."""

    def __init__(
        self, stage, sample_batch: dict, stage_dir: str, writer, every: int, total_steps: int
    ):
        super().__init__()
        self.stage, self.sample_batch, self.stage_dir, self.writer = (
            stage,
            sample_batch,
            stage_dir,
            writer,
        )
        self.every, self.total_steps = every, total_steps

    def on_train_batch_end(self, batch, logs=None):
        if due(batch, self.every, self.total_steps):
            with self.stage.averaged_weights():
                write_samples(self.stage, self.sample_batch, self.stage_dir, batch, self.writer)


class StopOnSignal(keras.callbacks.Callback):
    """SIGINT/SIGTERM become a request checked after each step: the step in flight finishes, a checkpoint is saved,
    and the run stops with TrainingInterrupted (so a kill never lands halfway through an update)."""

    def __init__(self, saver: Checkpointing):
        super().__init__()
        self.saver = saver
        self._requests = None
        self.requested = threading.Event()

    def on_train_begin(self, logs=None):
        self._requests = _stop_requests()
        self.requested = self._requests.__enter__()

    def on_train_end(self, logs=None):
        if self._requests is not None:
            self._requests.__exit__(None, None, None)
            self._requests = None

    def on_train_batch_end(self, batch, logs=None):
        if self.requested.is_set():
            last_good = self.saver.save(batch)
            raise TrainingInterrupted(
                f"stopped at step {batch}; checkpoint saved: {last_good}. "
                "Rerun the same command to continue."
            )


def train_stage(
    config: Config,
    stage_name: str,
    strategy: tf.distribute.Strategy,
    artists: list[dict],
    progress: bool = True,
) -> dict[str, float]:
    """Trains one stage to its configured number of steps (or what is left of them); returns the last metrics."""
    config = registry.method(config.method).configured(config, config.model_dir)
    cls = stage_class(stage_name)
    total_steps = cls.num_steps(config)
    stage_dir = checkpoints.stage_dir(config.model_dir, stage_name)
    chief = distribute.is_chief(strategy)
    stage, step, ckpt = build_stage(config, stage_name, strategy, artists)
    average = stage.weight_average
    ckpt_dir = (
        os.path.join(stage_dir, "ckpt")
        if chief
        else os.path.join(stage_dir, "tmp_ckpt_" + distribute.worker_tag(strategy))
    )
    checkpoints.remove_leftovers(ckpt_dir)
    check = checkpoints.FiniteCheck(stage.networks(), stage.optimizers, stage.averages())
    last_good = _restore_or_inherit(
        config, stage, ckpt, ckpt_dir, check
    )  # every checkpoint named good is checked
    manager = tf.train.CheckpointManager(ckpt, ckpt_dir, max_to_keep=3)
    start = int(step.numpy())
    make_eval = lambda: eval_dataset(config, cls)  # noqa: E731
    stage.before_training(make_eval, config.model_dir)
    if start >= total_steps:
        with stage.averaged_weights():
            _finish(stage, make_eval, config.model_dir, stage_dir, chief, ckpt_dir)
        return {}
    if chief and os.path.exists(os.path.join(stage_dir, DONE_MARKER)):
        os.remove(
            os.path.join(stage_dir, DONE_MARKER)
        )  # more steps were asked for: the hook must run again

    dataset = strategy.distribute_datasets_from_function(
        _dataset_fn(config, cls, cls.batch_size(config), start)
    )
    iterator = iter(dataset)

    replica_step = (
        tf.function(stage.train_step, jit_compile=True) if config.jit_compile else stage.train_step
    )

    @tf.function
    def train_one_step(it):
        strategy.run(replica_step, args=(next(it),))
        if average is not None:
            average.update(step + 1)

    writer = (
        tf.summary.create_file_writer(os.path.join(stage_dir, "logs"))
        if chief
        else tf.summary.create_noop_writer()
    )
    sample_batch = next(iter(make_eval().take(1))) if chief and config.sample_every else None
    probe = (
        transfer_eval.TrainingProbe(
            config.data_dir, config.image_size, os.path.join(config.model_dir, "eval"), config.seed
        )
        if chief and config.eval_every and stage.transfer_model()
        else None
    )
    if probe is not None:
        trim_metrics(stage_dir, start)
    clock = Clock(start)
    saver = Checkpointing(manager, check, last_good, config.checkpoint_every, total_steps)
    # In this order after every step: the guard before anything is written, the log (which resets the trackers) before
    # the periodic outputs, the stop request last so the step's checkpoint and pictures are written first.
    callbacks = [
        NonFiniteGuard(saver),
        Logging(
            stage,
            stage_name,
            writer,
            clock,
            config.log_every,
            total_steps,
            collapse.CollapseMonitor(cls.WATCH, stage_name, total_steps, len(artists))
            if chief
            else None,
            print_lines=progress and chief and not sys.stdout.isatty(),
        ),
    ]
    if (
        progress and chief and sys.stdout.isatty()
    ):  # a live bar on a terminal; plain lines in a log file
        callbacks.append(
            ProgressBar(keras.utils.Progbar(total_steps, stateful_metrics=list(stage.tracker)))
        )
    callbacks.append(saver)
    if config.lr_schedule != "constant" or config.lr_warmup_steps > 0:
        callbacks.append(
            LearningRates(
                stage.optimizers, config.lr_schedule, start, total_steps, config.lr_warmup_steps
            )
        )
    if probe is not None:
        callbacks.append(
            TransferEval(
                probe, stage, stage_dir, stage_name, writer, config.eval_every, total_steps
            )
        )
    if sample_batch is not None:
        callbacks.append(
            SampleGrids(stage, sample_batch, stage_dir, writer, config.sample_every, total_steps)
        )
    callbacks.append(StopOnSignal(saver))
    values: dict[str, float] = {}
    clock.restart()
    for callback in callbacks:
        callback.on_train_begin()
    try:
        for current in range(start + 1, total_steps + 1):
            train_one_step(iterator)
            values = {k: float(v) for k, v in stage.results().items()}
            callbacks[0].on_train_batch_end(
                current, values
            )  # the guard: nothing of a non-finite step is kept
            step.assign(current)
            for callback in callbacks[1:]:
                callback.on_train_batch_end(current, values)
    finally:
        for callback in callbacks:
            callback.on_train_end()
    with stage.averaged_weights():
        _finish(stage, make_eval, config.model_dir, stage_dir, chief, ckpt_dir)
    return values


def _finish(stage, make_eval, model_dir: str, stage_dir: str, chief: bool, ckpt_dir: str) -> None:
    """The after-training hook, then the DONE marker: a stage counts as done only when both happened."""
    if not chief:
        tf.io.gfile.rmtree(ckpt_dir)
        return
    if not os.path.exists(os.path.join(stage_dir, DONE_MARKER)):
        stage.after_training(make_eval, model_dir)
        with open(os.path.join(stage_dir, DONE_MARKER), "w") as f:
            f.write(f"{time.time()}\n")


def trim_metrics(stage_dir: str, last_step: int) -> None:
    """Drops metrics.csv rows after the step a run resumes from: a killed run recomputes them, one row per step."""
    path = os.path.join(stage_dir, "metrics.csv")
    if not os.path.exists(path):
        return
    with open(path, encoding="utf-8") as f:
        header, *rows = f.read().splitlines()
    kept = [row for row in rows if int(row.split(",", 1)[0]) <= last_step]
    with records.atomic_file(path) as tmp, open(tmp, "w", encoding="utf-8") as f:
        f.write("\n".join([header] + kept) + "\n")


def write_eval(
    numbers: dict[str, float], stage_dir: str, stage_name: str, current: int, writer
) -> None:
    """Transfer metrics of one step: TensorBoard scalars and a row of `<stage>/metrics.csv` (a curve, not a guess)."""
    with writer.as_default(step=current):
        for name, value in numbers.items():
            tf.summary.scalar(f"{stage_name}/eval/{name}", value)
    path = os.path.join(stage_dir, "metrics.csv")
    columns = ["step"] + sorted(numbers)
    new = not os.path.exists(path)
    with open(path, "a", encoding="utf-8") as f:
        if new:
            f.write(",".join(columns) + "\n")
        f.write(",".join([str(current)] + [f"{numbers[k]:.6g}" for k in columns[1:]]) + "\n")
    print(f"[{stage_name}] eval at step {current}: {summarize(numbers)}", flush=True)


def write_samples(stage, batch: dict, stage_dir: str, current: int, writer) -> str | None:
    grid = stage.sample_grid({k: v[:SAMPLE_BATCH] for k, v in batch.items()})
    if grid is None:
        return None
    path = os.path.join(stage_dir, "samples", f"step_{current:07d}.png")
    picture = visualize.grid_to_png(grid, path, stage.COLOR)
    with writer.as_default(step=current):
        tf.summary.image(f"{stage.NAME}/samples", picture[None], step=current)
    return path


def stage_is_done(config: Config, stage_name: str) -> bool:
    """All steps trained and the after-training hook finished (a kill in between leaves the stage not done)."""
    path = checkpoints.latest(config.model_dir, stage_name)
    if path is None or not os.path.exists(
        os.path.join(checkpoints.stage_dir(config.model_dir, stage_name), DONE_MARKER)
    ):
        return False
    step = checkpoints.saved_step(
        path
    )  # None when unreadable: train_stage then falls back to an older checkpoint
    return step is not None and step >= stage_class(stage_name).num_steps(config)


def final_grid_path(config: Config) -> str:
    return os.path.join(config.model_dir, "style_x_content.png")


def latest_samples(stage_dir: str) -> str | None:
    folder = os.path.join(stage_dir, "samples")
    if not os.path.isdir(folder):
        return None
    files = sorted(f for f in os.listdir(folder) if f.startswith("step_") and f.endswith(".png"))
    return os.path.join(folder, files[-1]) if files else None


def summarize(values: dict[str, float]) -> str:
    return (
        "  ".join(f"{k}={v:.4g}" for k, v in sorted(values.items()))
        if values
        else "(already complete)"
    )
