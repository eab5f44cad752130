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
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import keras
import numpy as np
import tensorflow as tf

from tf_gadn.training.collapse import Watch
from tf_gadn.training.config import Config


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

    @staticmethod
    def new_optimizer(algorithm: str, learning_rate: float) -> keras.optimizers.Optimizer:
        """The papers use Adam or RMSprop (GADN: RMSprop in stage 2, "momentum would sometimes cause instabilities")."""
        return {"adam": keras.optimizers.Adam, "rmsprop": keras.optimizers.RMSprop}[algorithm](
            learning_rate
        )

    def add_trackers(self, *names: str) -> None:
        for name in names:
            self.tracker[name] = keras.metrics.Mean(name=name)

    @property
    def metrics(self):
        return list(self.tracker.values())

    def batch_mean(self, per_example: tf.Tensor) -> tf.Tensor:
        """Sum over this replica's examples / global batch size (see module docstring)."""
        return tf.reduce_sum(per_example) / tf.cast(self.global_batch_size, per_example.dtype)

    def track(self, **values: tf.Tensor) -> None:
        """Record replica-partial batch means; scaled so the tracker mean is the global mean on any replica count."""
        replicas = tf.distribute.get_strategy().num_replicas_in_sync
        for name, value in values.items():
            self.tracker[name].update_state(value * replicas)

    def minimize(self, tape: tf.GradientTape, loss: tf.Tensor, *parts: str) -> None:
        """One gradient of `loss` for the variables of the named parts, each applied by that part's optimizer."""
        groups = [self._trained[part] for part in parts]
        grads = tape.gradient(loss, [v for group in groups for v in group])
        start = 0
        for part, group in zip(parts, groups):
            self.optimizers[part].apply(grads[start : start + len(group)], group)
            start += len(group)

    @staticmethod
    def correct(logits: tf.Tensor, labels: tf.Tensor) -> tf.Tensor:
        """1.0 where the top-1 class is the label (per example; reduce with batch_mean like a loss)."""
        return tf.cast(
            tf.equal(tf.argmax(logits, -1, output_type=labels.dtype), labels), tf.float32
        )

    def results(self) -> dict[str, tf.Tensor]:
        return {name: m.result() for name, m in self.tracker.items()}
