"""Where a run keeps its state, and how networks are restored from it (training resume, stage inheritance, export).

Layout of a model_dir: `config.json` (the Config of the run), `artists.json` (copy of the data set's), and one folder
per stage: `<stage>/ckpt/` (tf.train.CheckpointManager), `<stage>/logs/` (TensorBoard), `<stage>/samples/` (PNG grids).
A stage checkpoint holds `step`, `networks/<name>/wNNNN` and `optimizers/<name>/wNNNN`: every variable of every
network and optimizer, keyed by its position in `.weights` / `.variables`. Keras 3 objects are not walked
reliably by tf.train.Checkpoint (layers kept in Python lists and nested Sequentials go missing), and Keras's own
variable names depend on how many layers a process created before, so neither can key a checkpoint.
"""
from __future__ import annotations

import dataclasses
import json
import os

import tensorflow as tf

from tf_gadn.config import Config
from tf_gadn.data import records


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


def stage_checkpoint(step: tf.Variable, networks: dict, optimizers: dict | None = None) -> tf.train.Checkpoint:
    parts = {"step": step, "networks": tf.train.Checkpoint(**{n: VariableBag(net.weights) for n, net in networks.items()})}
    if optimizers is not None:
        parts["optimizers"] = tf.train.Checkpoint(**{n: VariableBag(o.variables) for n, o in optimizers.items()})
    return tf.train.Checkpoint(**parts)


def restore_networks(model_dir: str, stage: str, networks: dict) -> int:
    """Restores the named networks from a stage's latest checkpoint; returns the step it was taken at."""
    path = latest(model_dir, stage)
    if path is None:
        raise FileNotFoundError(f"no checkpoint of stage {stage!r} in {model_dir!r}: train that stage first")
    step = tf.Variable(0, dtype=tf.int64)
    status = stage_checkpoint(step, networks).restore(path)
    status.expect_partial()
    status.assert_existing_objects_matched()
    return int(step.numpy())


def save_run_info(model_dir: str, config: Config, artists: list[dict]) -> None:
    os.makedirs(model_dir, exist_ok=True)
    records.write_json(os.path.join(model_dir, "config.json"), dataclasses.asdict(config))
    records.write_json(os.path.join(model_dir, records.ARTISTS_FILE), artists)


def load_run_info(model_dir: str) -> tuple[Config, list[dict]]:
    """The Config and artists a model_dir was trained with (what export and evaluation rebuild networks from)."""
    path = os.path.join(model_dir, "config.json")
    if not os.path.exists(path):
        raise FileNotFoundError(f"{path!r} is missing: {model_dir!r} is not a tf_gadn model directory")
    with open(path, encoding="utf-8") as f:
        values = json.load(f)
    fields = {f.name: f for f in dataclasses.fields(Config)}
    values = {k: tuple(v) if isinstance(fields[k].default, tuple) else v for k, v in values.items() if k in fields}
    return Config(**values), records.read_artists(model_dir)


_NETWORK_BUILDERS = {"gadn": "tf_gadn.nn.gadn", "style_space": "tf_gadn.nn.style_space"}


def networks_in_checkpoint(path: str) -> set[str]:
    return {key.split("/")[1] for key in tf.train.load_checkpoint(path).get_variable_to_shape_map()
            if key.startswith("networks/")}


def load_trained(model_dir: str) -> tuple[Config, list[dict], dict]:
    """Rebuilds a run's networks from its config and restores each from the LAST stage of the chain that trained it
    (e.g. GADN's generator from stage 2 when it exists, else from stage 1). Used by export and evaluation."""
    import importlib

    from tf_gadn.stages import CHAINS
    config, artists = load_run_info(model_dir)
    networks = importlib.import_module(_NETWORK_BUILDERS[config.method]).build_networks(config, len(artists))
    source = {}
    for stage in CHAINS[config.method]:
        path = latest(model_dir, stage)
        if path is not None:
            source.update({name: stage for name in networks_in_checkpoint(path) if name in networks})
    if not source:
        raise FileNotFoundError(f"{model_dir!r} holds no trained stage yet")
    for stage in dict.fromkeys(source.values()):
        restore_networks(model_dir, stage, {name: networks[name] for name, s in source.items() if s == stage})
    return config, artists, {name: networks[name] for name in source}
