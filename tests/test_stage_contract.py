"""One harness, every stage of every registered method (as keras-hub runs one backbone test over every model):
one training step is finite, changes exactly the networks the stage trains, and the stage checkpoint holds every
trained variable and every optimizer slot and restores them exactly."""

import numpy as np
import pytest
import tensorflow as tf
from conftest import tiny_config

from tf_gadn.data import pipeline, records
from tf_gadn.training import checkpoints, loop, registry

STAGES = [(method.name, stage) for method in registry.methods().values() for stage in method.chain]
RUNS = {
    "gadn": "tiny_gadn_run",
    "style_space": "tiny_style_space_run",
}  # a method whose stages inherit


def _snapshot(networks: dict) -> dict[str, list[np.ndarray]]:
    return {name: [np.array(v.numpy()) for v in net.weights] for name, net in networks.items()}


@pytest.mark.parametrize("method_name, stage_name", STAGES, ids=[stage for _, stage in STAGES])
def test_stage_contract(method_name, stage_name, tiny_dataset, request, tmp_path):
    # the earlier stages this one inherits from (a one-stage method such as StarGAN inherits nothing)
    trained_run = request.getfixturevalue(RUNS[method_name]) if method_name in RUNS else tmp_path
    config = tiny_config(
        f"{method_name}_tiny",
        data_dir=str(tiny_dataset),
        model_dir=str(tmp_path),
        inherit_dir=str(trained_run),
        stage=stage_name,
    )
    artists = records.read_artists(str(tiny_dataset))
    stage, step, ckpt = loop.build_stage(config, stage_name, tf.distribute.get_strategy(), artists)
    cls = type(stage)
    networks = stage.networks()
    for earlier, names in cls.INHERITS.items():
        checkpoints.restore_networks(
            str(trained_run), earlier, {name: networks[name] for name in names}
        )
    stage.before_training(lambda: loop.eval_dataset(config, cls), str(tmp_path))

    trained = {name for names in stage.optimized_networks().values() for name in names}
    assert trained and trained <= set(networks) and not trained & set(cls.FROZEN)
    assert all(not networks[name].trainable for name in cls.FROZEN)

    # one finite step changes exactly the trained networks
    batch = next(
        iter(
            pipeline.make_dataset(
                config.data_dir,
                "train",
                global_batch_size=cls.batch_size(config),
                image_size=config.image_size,
                color=cls.COLOR,
                seed=config.seed,
                noise_dim=cls.noise_dim(config),
                uniform_dim=cls.uniform_dim(config),
                distinct_other_artist=cls.distinct_other_artist(config),
            )
        )
    )
    before = _snapshot(networks)
    tf.function(stage.train_step)(batch)
    values = {name: float(value) for name, value in stage.results().items()}
    assert values and all(np.isfinite(v) for v in values.values()), values
    after = _snapshot(networks)
    changed = {
        name
        for name in networks
        if any(not np.array_equal(b, a) for b, a in zip(before[name], after[name]))
    }
    assert changed == trained

    # the checkpoint covers every trainable variable of the stage and every optimizer variable, and restores them
    checkpointed = {id(v) for net in networks.values() for v in net.weights}
    checkpointed |= {id(v) for optimizer in stage.optimizers.values() for v in optimizer.variables}
    assert all(id(v) in checkpointed for v in stage.trainable_variables)
    for name, variables in stage.trained_variables().items():
        assert all(id(v) in checkpointed for v in variables), name
    step.assign(1)
    path = ckpt.save(str(tmp_path / "contract" / "ckpt"))
    saved = [np.array(v.numpy()) for v in ckpt_variables(stage)]
    for variable in ckpt_variables(stage):
        variable.assign(tf.fill(variable.shape, tf.cast(7, tf.as_dtype(variable.dtype))))
    step.assign(0)
    ckpt.restore(path).assert_consumed()
    assert int(step.numpy()) == 1
    for variable, value in zip(ckpt_variables(stage), saved):
        np.testing.assert_array_equal(variable.numpy(), value)


def ckpt_variables(stage) -> list:
    return [v for net in stage.networks().values() for v in net.weights] + [
        v for optimizer in stage.optimizers.values() for v in optimizer.variables
    ]
