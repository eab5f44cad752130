"""Where a run keeps its state, and how networks are restored from it (training resume, stage inheritance, export).

Layout of a model_dir: `config.json` (the Config of the run), `artists.json` (copy of the data set's), and one folder
per stage: `<stage>/ckpt/` (tf.train.CheckpointManager), `<stage>/logs/` (TensorBoard), `<stage>/samples/` (PNG grids).
A stage checkpoint holds `step`, `networks/<name>/wNNNN` and `optimizers/<name>/wNNNN`: every variable of every
network and optimizer, keyed by its position in `.weights` / `.variables`; with --ema_decay also
`averaged/<name>/wNNNN`, the average of each floating-point weight (training.averaging), which is what other stages,
evaluation and export restore. Keras 3 objects are not walked
reliably by tf.train.Checkpoint (layers kept in Python lists and nested Sequentials go missing), and Keras's own
variable names depend on how many layers a process created before, so neither can key a checkpoint.

Faults this module absorbs: a rerun with another config or data set is refused before anything is written
(`check_run_dir`); every restore goes through `restore_newest`, which falls back from a damaged or non-finite
checkpoint to the newest one that restores (the training loop moves the damaged one into `<ckpt>/corrupt/`); what a
killed save leaves behind is removed before the next save (`remove_leftovers`).
"""

from __future__ import annotations

import collections
import dataclasses
import functools
import glob
import json
import os
import re
import shutil
import sys

import tensorflow as tf

from tf_gadn.data import records
from tf_gadn.training import registry
from tf_gadn.training.averaging import float_weights, floating
from tf_gadn.training.config import RUN_SETTINGS, Config, upgrade_stored

CORRUPT_DIR = "corrupt"
_CHECKPOINT_NAME = re.compile(
    r"^ckpt-(\d+)$"
)  # tf.train.CheckpointManager's default prefix + number
# What restoring a damaged checkpoint raises in TF 2.21: an OpError (NotFoundError, DataLossError, or a bare OpError)
# for a missing, empty or garbled .index or .data file, and IndexError("Read less bytes than requested") for a
# truncated .data file. A checkpoint that reads but does not fit the networks raises ValueError instead.
UNREADABLE = (tf.errors.OpError, IndexError)


class RunMismatchError(ValueError):
    """The model_dir holds a run with another configuration or data set (see check_run_dir)."""


class CheckpointError(RuntimeError):
    """No checkpoint of a folder restores, or one does not fit the networks it is restored into."""


def stage_dir(model_dir: str, stage: str) -> str:
    return os.path.join(model_dir, stage)


def latest(model_dir: str, stage: str) -> str | None:
    return tf.train.latest_checkpoint(os.path.join(stage_dir(model_dir, stage), "ckpt"))


class VariableBag(tf.Module):
    """Every variable of a network or optimizer as a checkpoint child `wNNNN` (position in its variable list)."""

    def __init__(self, variables):
        super().__init__()
        for index, variable in enumerate(variables):
            setattr(self, f"w{index:04d}", variable)


def stage_checkpoint(
    step: tf.Variable,
    networks: dict,
    optimizers: dict | None = None,
    averages: dict[str, list] | None = None,
) -> tf.train.Checkpoint:
    parts = {
        "step": step,
        "networks": tf.train.Checkpoint(
            **{n: VariableBag(net.weights) for n, net in networks.items()}
        ),
    }
    if optimizers is not None:
        parts["optimizers"] = tf.train.Checkpoint(
            **{n: VariableBag(o.variables) for n, o in optimizers.items()}
        )
    if averages:
        parts["averaged"] = tf.train.Checkpoint(
            **{n: VariableBag(variables) for n, variables in averages.items()}
        )
    return tf.train.Checkpoint(**parts)


def _finite_flags(variables: list) -> tf.Tensor:
    return tf.stack([tf.reduce_all(tf.math.is_finite(v)) for v in variables])


class FiniteCheck:
    """Whether every float variable of some networks (and optimizers) is finite: one tf.function, traced once, that
    reduces each variable to a flag, so a check costs one call whatever the number of variables. Run before every save
    and after every restore, so that no checkpoint with a NaN or Inf is written or trusted."""

    def __init__(
        self,
        networks: dict,
        optimizers: dict | None = None,
        averages: dict[str, list] | None = None,
    ):
        groups = [(name, net.weights) for name, net in networks.items()]
        groups += [(f"{name} optimizer", opt.variables) for name, opt in (optimizers or {}).items()]
        groups += [(f"{name} average", variables) for name, variables in (averages or {}).items()]
        self._owners, variables = [], []
        for owner, owner_variables in groups:
            for variable in floating(owner_variables):
                self._owners.append(owner)
                variables.append(variable)
        # A partial, not a lambda: TF counts retracing per code object and would warn about every new FiniteCheck.
        self._flags = tf.function(functools.partial(_finite_flags, variables))

    def failures(self) -> str:
        """'' when every variable is finite, else which ones are not, e.g. 'generator: 12 of 20 tensors'."""
        if not self._owners:
            return ""
        total = collections.Counter(self._owners)
        bad = collections.Counter(
            owner for owner, ok in zip(self._owners, self._flags().numpy()) if not ok
        )
        return ", ".join(
            f"{owner}: {bad[owner]} of {total[owner]} tensors" for owner in total if bad[owner]
        )


def checkpoint_number(path: str) -> int:
    return int(_CHECKPOINT_NAME.match(os.path.basename(path)).group(1))


def checkpoint_candidates(ckpt_dir: str) -> list[str]:
    """Every checkpoint prefix `ckpt-N` of ckpt_dir, newest (highest N) first: those with an .index file and those the
    `checkpoint` state file lists even when their files are gone (tf.train.latest_checkpoint returns None when the
    newest one's .index is missing, which would silently start the stage again from scratch)."""
    names = set()
    if os.path.isdir(ckpt_dir):
        names.update(
            name[: -len(".index")] for name in os.listdir(ckpt_dir) if name.endswith(".index")
        )
    state = tf.train.get_checkpoint_state(ckpt_dir)
    if state is not None:
        names.update(os.path.basename(path) for path in state.all_model_checkpoint_paths)
    paths = [os.path.join(ckpt_dir, name) for name in names if _CHECKPOINT_NAME.match(name)]
    return sorted(paths, key=checkpoint_number, reverse=True)


def _first_line(err: BaseException) -> str:
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__


def _restore_problem(checkpoint: tf.train.Checkpoint, path: str, check: FiniteCheck) -> str | None:
    """None when `path` restored into `checkpoint` whole and finite; else what is wrong with it."""
    try:
        status = checkpoint.restore(path)
        status.expect_partial()  # stage inheritance and export restore a subset of the networks
        status.assert_existing_objects_matched()
    except UNREADABLE as err:
        return f"cannot be read ({type(err).__name__}: {_first_line(err)})"
    except (ValueError, AssertionError) as err:
        raise CheckpointError(
            f"checkpoint {path} does not fit the networks of this configuration ({_first_line(err)})"
            ": was the run trained with another config or data set?"
        ) from err
    bad = check.failures()
    return f"holds non-finite values ({bad})" if bad else None


def _move_aside(path: str) -> str:
    """Moves the files of checkpoint `path` into <ckpt_dir>/corrupt/<ckpt-N>[.k]/ and returns that folder."""
    folder = os.path.join(os.path.dirname(path), CORRUPT_DIR, os.path.basename(path))
    target, k = folder, 0
    while os.path.exists(target):
        k += 1
        target = f"{folder}.{k}"
    os.makedirs(target)
    for file in glob.glob(glob.escape(path) + ".*"):
        os.replace(file, os.path.join(target, os.path.basename(file)))
    return target


def restore_newest(
    checkpoint: tf.train.Checkpoint, ckpt_dir: str, check: FiniteCheck, move_aside: bool = False
) -> str | None:
    """Restores the newest checkpoint of ckpt_dir that reads back whole and holds only finite values, and returns its
    path (None when ckpt_dir holds no checkpoint at all). Each newer one that fails is named in a warning on stderr;
    with move_aside (the training loop, which owns the folder) it is moved into <ckpt_dir>/corrupt/ and the state file
    is rewritten, so it is neither retried nor counted by CheckpointManager; readers (export, evaluation, stage
    inheritance) leave it where it is. Raises CheckpointError when checkpoints exist but none restores, or when one
    does not fit the networks."""
    failures = []
    for path in checkpoint_candidates(ckpt_dir):
        problem = _restore_problem(checkpoint, path, check)
        if problem is None:
            if failures and move_aside:
                older = [
                    p
                    for p in checkpoint_candidates(ckpt_dir)
                    if checkpoint_number(p) <= checkpoint_number(path)
                ]
                tf.compat.v1.train.update_checkpoint_state(
                    ckpt_dir, path, all_model_checkpoint_paths=older[::-1]
                )
            return path
        failures.append(f"{os.path.basename(path)} {problem}")
        where = f"moved to {_move_aside(path)}" if move_aside else "left in place"
        print(
            f"warning: checkpoint {path} {problem}; {where}; trying an older one",
            file=sys.stderr,
            flush=True,
        )
    if failures:
        moved = (
            f". They were moved into {CORRUPT_DIR}/: a rerun trains this stage from its start"
            if move_aside
            else ""
        )
        raise CheckpointError(
            f"no checkpoint in {ckpt_dir!r} restores: " + "; ".join(failures) + moved
        )
    return None


def restore_networks(model_dir: str, stage: str, networks: dict) -> int:
    """Restores the named networks from a stage's newest checkpoint that restores; returns the step it was taken at.
    A network the stage averaged (--ema_decay) gets its averaged weights: the stage's result."""
    step = tf.Variable(0, dtype=tf.int64)
    path = restore_newest(
        stage_checkpoint(step, networks),
        os.path.join(stage_dir(model_dir, stage), "ckpt"),
        FiniteCheck(networks),
    )
    if path is None:
        raise FileNotFoundError(
            f"no checkpoint of stage {stage!r} in {model_dir!r}: train that stage first"
        )
    averaged = sorted(_saved_networks(path, "averaged") & set(networks))
    if averaged:
        _overlay_averages(path, {name: networks[name] for name in averaged})
    return int(step.numpy())


def _saved_networks(path: str, group: str) -> set[str]:
    keys = tf.train.load_checkpoint(path).get_variable_to_shape_map()
    return {key.split("/")[1] for key in keys if key.startswith(group + "/")}


def _overlay_averages(path: str, networks: dict) -> None:
    """Replaces the networks' floating-point weights by the averages `path` holds for them."""
    averaged = tf.train.Checkpoint(
        averaged=tf.train.Checkpoint(
            **{name: VariableBag(float_weights(net)) for name, net in networks.items()}
        )
    )
    problem = _restore_problem(averaged, path, FiniteCheck(networks))
    if problem is not None:
        raise CheckpointError(f"the weight averages of checkpoint {path} {problem}")


def saved_step(path: str) -> int | None:
    """The step a checkpoint was taken at, or None when its index cannot be read."""
    try:
        return int(tf.train.load_checkpoint(path).get_tensor("step/.ATTRIBUTES/VARIABLE_VALUE"))
    except UNREADABLE:
        return None


def remove_leftovers(ckpt_dir: str) -> list[str]:
    """Deletes what a save killed halfway leaves in ckpt_dir, and returns the names. TF 2.21 writes a checkpoint's
    shards into `<prefix>_temp/` and then merges them into `<prefix>.index` / `.data-*` (functional_saver.py,
    sharded_suffix "_temp/part"), and the `checkpoint` state file as `checkpoint.tmp<uuid>` + rename; nothing reads or
    removes either after a kill. Called by the process that owns ckpt_dir before it restores or saves anything."""
    removed = []
    for name in sorted(os.listdir(ckpt_dir)) if os.path.isdir(ckpt_dir) else []:
        path = os.path.join(ckpt_dir, name)
        if name.endswith("_temp") and os.path.isdir(path):
            shutil.rmtree(path)
        elif name.startswith("checkpoint.tmp") and os.path.isfile(path):
            os.remove(path)
        else:
            continue
        removed.append(name)
    if removed:
        print(
            f"removed leftovers of an interrupted save in {ckpt_dir}: {', '.join(removed)}",
            file=sys.stderr,
            flush=True,
        )
    return removed


def _read_json(path: str):
    """The JSON content of path, None when it does not exist; RunMismatchError when it cannot be parsed."""
    if not os.path.exists(path):
        return None
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except (OSError, ValueError) as err:
        raise RunMismatchError(
            f"{path!r} cannot be read ({err}); pass --overwrite_config to replace it"
        ) from err


def _data_identity(artists) -> list:
    """What identifies a data set for training: its artists in id order, each with its training-image count."""
    return (
        [(a.get("name"), a.get("count")) for a in artists]
        if isinstance(artists, list)
        else [artists]
    )


def _describe(artists) -> str:
    identity = _data_identity(artists)
    names = ", ".join(str(name) for name, _ in identity[:8]) + (
        ", ..." if len(identity) > 8 else ""
    )
    total = sum(count for _, count in identity if isinstance(count, int))
    return f"{len(identity)} artists, {total} training images ({names})"


def check_run_dir(model_dir: str, config: Config, artists: list[dict]) -> None:
    """Refuses (RunMismatchError) to train into a model_dir that holds a different model, unless
    config.overwrite_config. Different means: a field that shapes the networks or what they learn differs from the
    run's config.json (all fields but config.RUN_SETTINGS, which only say how the run is carried out: step counts,
    learning rates, logging, strategy...; a field config.json lacks, written by older code, counts as its default or
    as config.IMPLIED_BY_OLDER_RUNS says), or
    the data set's artists (names and training counts, in id order) differ from the run's artists.json; the data set's
    path does not matter. Only reads: callers check before they write anything."""
    if config.overwrite_config:
        return
    differences = []
    stored = _read_json(os.path.join(model_dir, "config.json"))
    if stored is not None:
        stored = upgrade_stored(stored)
        now, defaults = (json.loads(json.dumps(dataclasses.asdict(c))) for c in (config, Config()))
        differences += [
            f"{name}: the run has {stored.get(name, defaults[name])!r}, this command {value!r}"
            for name, value in now.items()
            if name not in RUN_SETTINGS and stored.get(name, defaults[name]) != value
        ]
    stored_artists = _read_json(os.path.join(model_dir, records.ARTISTS_FILE))
    if stored_artists is not None and _data_identity(stored_artists) != _data_identity(artists):
        differences.append(
            f"data set: the run has {_describe(stored_artists)}, {config.data_dir!r} has "
            f"{_describe(artists)}"
        )
    if differences:
        raise RunMismatchError(
            f"{model_dir!r} holds a run with a different configuration or data set:\n  "
            + "\n  ".join(differences)
            + "\nUse another --model_dir, or pass --overwrite_config to train into this one anyway (its config.json "
            "and artists.json are replaced; its checkpoints are kept and must fit the new networks)."
        )


def save_run_info(model_dir: str, config: Config, artists: list[dict]) -> None:
    """Records the run's config and artists (each written atomically), once check_run_dir has accepted them."""
    check_run_dir(model_dir, config, artists)
    os.makedirs(model_dir, exist_ok=True)
    records.write_json(os.path.join(model_dir, "config.json"), dataclasses.asdict(config))
    records.write_json(os.path.join(model_dir, records.ARTISTS_FILE), artists)


def load_run_info(model_dir: str) -> tuple[Config, list[dict]]:
    """The Config and artists a model_dir was trained with (what export and evaluation rebuild networks from)."""
    path = os.path.join(model_dir, "config.json")
    if not os.path.exists(path):
        raise FileNotFoundError(
            f"{path!r} is missing: {model_dir!r} is not a tf_gadn model directory"
        )
    with open(path, encoding="utf-8") as f:
        values = upgrade_stored(json.load(f))
    fields = {f.name: f for f in dataclasses.fields(Config)}
    values = {
        k: tuple(v) if isinstance(fields[k].default, tuple) else v
        for k, v in values.items()
        if k in fields
    }
    config = Config(**values)
    return registry.method(config.method).configured(config, model_dir), records.read_artists(
        model_dir
    )


def networks_in_stage(model_dir: str, stage: str) -> set[str]:
    """Names of the networks a stage's checkpoints hold (read from the newest one whose index reads; empty when the
    stage has no checkpoint)."""
    candidates = checkpoint_candidates(os.path.join(stage_dir(model_dir, stage), "ckpt"))
    for path in candidates:
        try:
            return _saved_networks(path, "networks")
        except UNREADABLE:
            continue
    if candidates:
        raise CheckpointError(f"no checkpoint of stage {stage!r} in {model_dir!r} can be read")
    return set()


def load_trained(model_dir: str, through_stage: str = "") -> tuple[Config, list[dict], dict]:
    """Rebuilds a run's networks from its config and restores each from the LAST stage of the chain that trained it
    (e.g. GADN's generator from stage 2 when it exists, else from stage 1), or from the last stage up to and including
    `through_stage` (to measure an earlier stage of a finished run). A run that trained only later stages
    (--inherit_dir) takes the stages before its first one from the run it inherited, as its training did (the style
    space's representative styles live only in the style encoder stage). Used by export and evaluation."""
    config, artists = load_run_info(model_dir)
    method = registry.method(config.method)
    networks = method.build_networks(config, len(artists))
    chain = list(method.chain)
    if through_stage:
        if through_stage not in chain:
            raise ValueError(f"{through_stage!r} is not a stage of {config.method!r}: {chain}")
        chain = chain[: chain.index(through_stage) + 1]
    own = {stage: networks_in_stage(model_dir, stage) for stage in chain}
    first_own = next((k for k, stage in enumerate(chain) if own[stage]), len(chain))
    source = {}  # network name -> (run, stage) it is restored from
    for k, stage in enumerate(chain):
        run = model_dir if k >= first_own else config.inherit_dir
        saved = own[stage] if k >= first_own else (networks_in_stage(run, stage) if run else set())
        source.update({name: (run, stage) for name in saved if name in networks})
    if not source:
        raise FileNotFoundError(f"{model_dir!r} holds no trained stage yet")
    for run, stage in dict.fromkeys(source.values()):
        restore_networks(
            run, stage, {name: networks[name] for name, s in source.items() if s == (run, stage)}
        )
    return config, artists, {name: networks[name] for name in source}
