"""What every training stage shares: sub-networks as attributes, one optimizer per trained part, loss trackers,
reduction by the global batch size, and the contract with the input pipeline and the training loop.

Contract (the loop in `tf_gadn.training.loop` relies on it, the pipeline in `tf_gadn.data.pipeline` serves it):
- `train_step(batch)` gets a dict: "image" float32 [B, S, S, 3] in [-1, 1] (RGB, or normalised Lab when COLOR="lab"),
  "artist" int32 [B], "other_artist" int32 [B] (a' ~ p(a), and != artist when `distinct_other_artist(config)`),
  "noise" float32 [B, noise_dim(config)] standard normals, "uniform" float32 [B, uniform_dim(config)] in [0, 1).
  All randomness of a step comes from the batch (seeded and indexed by step in the pipeline): runs resume exactly
  and N replicas compute what one device computes on the same global batch. No stateful RNG ops in train_step.
- `networks()` names what is checkpointed; `INHERITS` says which networks come from which earlier stage; `FROZEN`
  names inherited networks the stage must not change (the base class makes them non-trainable and refuses an optimizer
  for them); `make_optimizers()` names what is trained, and `trained_variables()` follows from it.
- Per-example losses are summed and divided by the *global* batch size (`self.batch_mean`), so gradients summed over
  replicas equal the single-device mean.

Gradient accumulation (`--accumulate_steps K`): the step's batch is split into K micro-batches run one after another,
and since every loss is a sum over examples divided by the global batch, the K gradients summed are the whole batch's
gradient (as replicas' gradients are). A step holding several updates (a critic, then the generator against the
updated critic) is run once per update ("phase"): phase j runs the step's code on every micro-batch after updates
< j were applied, takes only update j's gradient, sums it over the micro-batches and applies it; so each update sees
what it sees in the unsplit step, and the forward pass the updates share is recomputed once per update (memory for
compute). Trackers record the last phase's values, so a loss of an earlier update is logged as measured after that
update; `output_spread` and `--cap_c1_at_chance` are batch-level and are taken per micro-batch. A conditional update
(`minimize(..., when=c)`) uses `c` as the first micro-batch read it, before any of the step's updates.
"""

from __future__ import annotations

import contextlib
import functools
import threading
from collections.abc import Callable, Iterable

import keras
import numpy as np
import tensorflow as tf

from tf_gadn import losses
from tf_gadn.training.collapse import Watch
from tf_gadn.training.config import Config
from tf_gadn.training.optimizers import FusedAdam


def output_spread(generated: tf.Tensor, real: tf.Tensor) -> tf.Tensor:
    """Per-pixel spread of generated images over the global batch relative to the real images' (about 1 when the
    outputs vary as the inputs do, near 0 when every input is drawn as the same image): the collapse monitor reads it.

    The moments are summed over replicas, so N replicas give the single-device value; divided by the replica count
    because `Stage.track` multiplies by it (the value is already global)."""
    context = tf.distribute.get_replica_context()

    def spread(images):
        images = tf.cast(images, tf.float32)
        count = context.all_reduce("sum", tf.cast(tf.shape(images)[0], tf.float32))
        first = context.all_reduce("sum", tf.reduce_sum(images, axis=0)) / count
        second = context.all_reduce("sum", tf.reduce_sum(tf.square(images), axis=0)) / count
        return tf.reduce_mean(tf.sqrt(tf.maximum(second - tf.square(first), 0.0)))

    ratio = spread(tf.stop_gradient(generated)) / (spread(real) + 1e-6)
    return ratio / tf.cast(context.num_replicas_in_sync, tf.float32)


class _Phase:
    """One update of an accumulated step: which `minimize` call it is, its summed gradient, the values to track."""

    def __init__(self, index: int, conditions: dict[int, tf.Tensor]):
        self.index, self.calls = index, 0
        self.conditions = (
            conditions  # shared by the step's phases: update -> `when` as read in phase 0
        )
        self.parts: tuple[str, ...] = ()
        self.grads: list | None = None
        self.tracked: list[dict] = []


def _add(total, grad):
    """Sum of two gradients; a style table's row gradients (IndexedSlices) are concatenated, so the optimizer gets
    the rows the whole batch would give it (it treats a repeated row differently from its summed dense form)."""
    if isinstance(grad, tf.IndexedSlices):
        return tf.IndexedSlices(
            tf.concat([total.values, grad.values], 0),
            tf.concat([total.indices, grad.indices], 0),
            total.dense_shape,
        )
    return total + grad


def _accumulating(train_step):
    """Wraps a subclass's train_step: unchanged with accumulate_steps=1, else run as K micro-batches per update."""

    @functools.wraps(train_step)
    def step(self, batch):
        if self.accumulate_steps == 1 or self._phase is not None:
            return train_step(self, batch)
        return self._accumulated_step(functools.partial(train_step, self), batch)

    step.accumulating = True
    return step


class Stage(keras.Model):
    """Base class of every training stage (the contract in the module docstring).

    Class attributes a subclass sets: NAME (its model_dir folder and registry name), CONFIG_PREFIX (Config fields
    `<prefix>_steps` / `<prefix>_batch_size`), COLOR ("rgb" or "lab"), INHERITS, FROZEN, WATCH.

    Args:
        config: the run's frozen Config.
        artist_counts: training images per artist, in artist-id order (p(a), and the number of artists).
        global_batch_size: examples per step over all replicas (every loss is divided by it).
    """

    NAME = "stage"
    COLOR = "rgb"
    INHERITS: dict[
        str, tuple[str, ...]
    ] = {}  # earlier stage name -> network names restored from its checkpoint
    WATCH = Watch()  # tracked values the collapse monitor checks (training.collapse)
    FROZEN: tuple[str, ...] = ()  # inherited networks this stage must not change
    CONFIG_PREFIX = "stage"  # Config fields <prefix>_batch_size / <prefix>_steps

    def __init__(self, config: Config, artist_counts: Iterable[int], global_batch_size: int):
        super().__init__(name=self.NAME)
        self.config = config
        self.artist_counts = np.asarray(list(artist_counts), dtype=np.int64)
        self.num_artists = int(len(self.artist_counts))
        self.global_batch_size = int(global_batch_size)
        self.tracker: dict[str, keras.metrics.Mean] = {}
        self.accumulate_steps = int(config.accumulate_steps)
        self.weight_average = (
            None  # --ema_decay: a training.averaging.WeightAverage, set by the training loop
        )
        # MirroredStrategy runs the replicas' train_step in threads: each replica has its own phase
        self._phases = threading.local()
        if self.accumulate_steps < 1 or self.global_batch_size % self.accumulate_steps:
            raise ValueError(
                f"accumulate_steps={self.accumulate_steps} must be >= 1 and divide the batch of "
                f"{self.global_batch_size}"
            )

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        step = cls.__dict__.get("train_step")
        if step is not None and not getattr(step, "accumulating", False):
            cls.train_step = _accumulating(step)

    # ---- per-stage knobs read from the config (Table 2) -----------------------------------------------------------
    @classmethod
    def batch_size(cls, config: Config) -> int:
        return getattr(config, f"{cls.CONFIG_PREFIX}_batch_size")

    @classmethod
    def num_steps(cls, config: Config) -> int:
        return getattr(config, f"{cls.CONFIG_PREFIX}_steps")

    @classmethod
    def noise_dim(cls, config: Config) -> int:
        """Width of the batch's "noise" (standard normals: the eps of every reparameterisation in a step)."""
        return 0

    @classmethod
    def distinct_other_artist(cls, config: Config) -> bool:
        """Whether the batch's a' is drawn from the artists other than a (else a' ~ p(a), a' = a now and then)."""
        return False

    @classmethod
    def uniform_dim(cls, config: Config) -> int:
        """Width of the batch's "uniform" (U[0, 1): augmentation draws, nested-dropout lengths, patch positions)."""
        return 0

    # ---- what subclasses provide -------------------------------------------------------------------------------
    def networks(self) -> dict[str, keras.layers.Layer]:
        """Name -> sub-network (or variable holder such as the style table); checkpointed and inheritable."""
        raise NotImplementedError

    def make_optimizers(self) -> dict[str, keras.optimizers.Optimizer]:
        """Name -> optimizer, the paper's algorithm and learning rate for each trained part."""
        raise NotImplementedError

    def optimized_networks(self) -> dict[str, tuple[str, ...]]:
        """Optimizer name -> the networks it updates; by default each optimizer is named after its network."""
        return {name: (name,) for name in self.optimizers}

    def trained_networks(self) -> dict[str, keras.layers.Layer]:
        """The networks some optimizer of this stage updates (what --ema_decay averages)."""
        networks = self.networks()
        names = dict.fromkeys(n for group in self.optimized_networks().values() for n in group)
        return {name: networks[name] for name in names}

    def averages(self) -> dict[str, list] | None:
        """Network name -> its weight-average variables (--ema_decay; set by the training loop), else None."""
        return self.weight_average.shadows if self.weight_average is not None else None

    def averaged_weights(self):
        """A context in which the networks hold their weight average (--ema_decay; what the stage hands on), the
        trained weights back after it; a no-op without an average."""
        if self.weight_average is None:
            return contextlib.nullcontext()
        return self.weight_average.in_networks()

    def trained_variables(self) -> dict[str, list]:
        """Optimizer name -> the variables it updates (used to build optimizer slots before a checkpoint restore):
        the trainable variables of `optimized_networks()`, never those of a FROZEN network."""
        networks = self.networks()
        trained = {}
        for optimizer, names in self.optimized_networks().items():
            frozen = sorted(set(names) & set(self.FROZEN))
            if frozen:
                raise ValueError(
                    f"stage {self.NAME!r} has an optimizer for its frozen network(s) {frozen}"
                )
            trained[optimizer] = [v for name in names for v in networks[name].trainable_variables]
        return trained

    def transfer_model(self):
        """A tf_gadn.evaluation.transfer_eval.TransferModel of the networks being trained (for --eval_every); None if the stage
        cannot transfer yet."""
        return None

    def sample_grid(self, batch: dict) -> tf.Tensor | None:
        """[rows, cols, S, S, 3] images in this stage's colour space for the periodic sample grid; None if none."""
        return None

    def after_inheriting(self, inherit_dir: str) -> None:
        """Hook run once when a fresh stage has restored its INHERITS (not on a resume): derive weights from them."""

    def before_training(
        self, make_eval_dataset: Callable[[], tf.data.Dataset], model_dir: str
    ) -> None:
        """Hook run once after networks are built/inherited/restored, before the first step (e.g. load statistics).

        make_eval_dataset() iterates the train split once, in order, batched, in this stage's colour space."""

    def after_training(
        self, make_eval_dataset: Callable[[], tf.data.Dataset], model_dir: str
    ) -> None:
        """Hook run once when the stage's last step is done (e.g. content statistics after GADN stage 1)."""

    # ---- shared plumbing ---------------------------------------------------------------------------------------
    def compile(self, optimizers: dict[str, keras.optimizers.Optimizer] | None = None, **kwargs):
        super().compile(**kwargs)
        networks = self.networks()
        for name in self.FROZEN:
            networks[name].trainable = False
        self.optimizers = optimizers if optimizers is not None else self.make_optimizers()
        self._trained = self.trained_variables()
        for name, variables in self._trained.items():
            self.optimizers[name].build(variables)

    def new_optimizer(self, algorithm: str, learning_rate: float) -> keras.optimizers.Optimizer:
        """The papers use Adam or RMSprop (GADN: RMSprop in stage 2, "momentum would sometimes cause instabilities");
        --fused_adam runs each Adam update as one kernel."""
        adam = FusedAdam if self.config.fused_adam else keras.optimizers.Adam
        return {"adam": adam, "rmsprop": keras.optimizers.RMSprop}[algorithm](learning_rate)

    def add_trackers(self, *names: str) -> None:
        for name in names:
            self.tracker[name] = keras.metrics.Mean(name=name)

    @property
    def metrics(self):
        return list(self.tracker.values())

    def batch_mean(self, per_example: tf.Tensor) -> tf.Tensor:
        """Sum over this replica's examples / global batch size (see module docstring)."""
        return tf.reduce_sum(per_example) / tf.cast(self.global_batch_size, per_example.dtype)

    @property
    def _phase(self) -> _Phase | None:
        return getattr(self._phases, "phase", None)

    @_phase.setter
    def _phase(self, phase: _Phase | None) -> None:
        self._phases.phase = phase

    def track(self, **values: tf.Tensor) -> None:
        """Record replica-partial batch means; scaled so the tracker mean is the global mean on any replica count
        (and any number of micro-batches: their partial means add up like the replicas')."""
        if self._phase is not None:
            self._phase.tracked.append(values)
            return
        replicas = tf.distribute.get_strategy().num_replicas_in_sync
        for name, value in values.items():
            self.tracker[name].update_state(value * replicas)

    def minimize(
        self, tape: tf.GradientTape, loss: tf.Tensor, *parts: str, when: tf.Tensor | None = None
    ) -> None:
        """One gradient of `loss` for the variables of the named parts, each applied by that part's optimizer (in an
        accumulated step: added to the phase's sum if this is the phase's update, else skipped).

        `when` (a boolean scalar) makes the update conditional, as StarGAN's generator moves every n_critic steps.
        An accumulated step uses the value its first micro-batch read, before any of the step's updates: what the
        unsplit step reads when `when` is computed from state at the start of the step."""
        phase = self._phase
        if phase is not None:
            phase.calls += 1
            if when is not None:
                phase.conditions.setdefault(phase.calls - 1, when)
            if phase.calls - 1 != phase.index:
                return
        groups = [self._trained[part] for part in parts]
        variables = [v for group in groups for v in group]
        if phase is None:
            self._apply_when(when, parts, lambda: tape.gradient(loss, variables))
            return
        grads = tape.gradient(loss, variables)
        phase.parts = parts
        phase.grads = (
            grads if phase.grads is None else [_add(a, g) for a, g in zip(phase.grads, grads)]
        )

    def _apply_when(self, when: tf.Tensor | None, parts: tuple[str, ...], gradients) -> None:
        """Applies `gradients()` (taken inside the condition's branch: only when the update happens)."""
        if when is None:
            self._apply(parts, gradients())
            return

        def update():
            self._apply(parts, gradients())
            return tf.constant(True)

        tf.cond(when, update, lambda: tf.constant(False))

    def _apply(self, parts: tuple[str, ...], grads: list) -> None:
        start = 0
        for part in parts:
            group = self._trained[part]
            self.optimizers[part].apply(grads[start : start + len(group)], group)
            start += len(group)

    def _accumulated_step(self, train_step, batch: dict) -> dict[str, tf.Tensor]:
        """train_step over `accumulate_steps` micro-batches, one phase per update (module docstring)."""
        k = self.accumulate_steps
        micro = {name: tf.split(value, k) for name, value in batch.items()}
        index, conditions = 0, {}
        while True:
            phase = self._phase = _Phase(index, conditions)
            try:
                for i in range(k):
                    # one micro-batch after the other, so only one holds activations at a time
                    with tf.control_dependencies(
                        tf.nest.flatten(phase.grads or [], expand_composites=True)
                    ):
                        piece = {name: tf.identity(parts[i]) for name, parts in micro.items()}
                    phase.calls = 0
                    train_step(piece)
            finally:
                self._phase = None
            if phase.grads is not None:
                self._apply_when(
                    conditions.get(index), phase.parts, lambda grads=phase.grads: grads
                )
            if index + 1 >= phase.calls:
                break
            index += 1
        for values in phase.tracked:
            self.track(**{name: value * k for name, value in values.items()})
        return self.results()

    @staticmethod
    def correct(logits: tf.Tensor, labels: tf.Tensor) -> tf.Tensor:
        """1.0 where the top-1 class is the label (per example; reduce with batch_mean like a loss)."""
        return tf.cast(
            tf.equal(tf.argmax(logits, -1, output_type=labels.dtype), labels), tf.float32
        )

    def code_adversary_step(
        self, tape: tf.GradientTape, classifier, code: tf.Tensor, artist: tf.Tensor, part: str
    ) -> tuple[tf.Tensor, tf.Tensor]:
        """An artist classifier on a content code, trained adversarially (GADN's C1 on the code, Appendix B.1): it
        learns to name the artist from the code (NLL, optimizer `part`); then, under the encoder's `tape`, the updated
        classifier's NLL (for the encoder to raise, capped at chance by the caller) and its accuracy."""
        with tape.stop_recording(), tf.GradientTape() as c_tape:
            loss = self.batch_mean(losses.nll(classifier(tf.stop_gradient(code)), artist))
        with tape.stop_recording():
            self.minimize(c_tape, loss, part)
        logits = classifier(code)
        return self.batch_mean(losses.nll(logits, artist)), self.batch_mean(
            self.correct(logits, artist)
        )

    def results(self) -> dict[str, tf.Tensor]:
        return {name: m.result() for name, m in self.tracker.items()}
