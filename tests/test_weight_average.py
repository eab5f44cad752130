"""--ema_decay: the average follows its formula, is checkpointed so a killed run resumes on the same average, is the
same on 1 or 2 replicas, and is what later stages and evaluation restore (not the raw weights being trained)."""

import keras
import numpy as np
import pytest
import tensorflow as tf
from test_training import assert_same_weights, run_killed_and_resumed, run_stage, tiny_config

from tf_gadn.data import records
from tf_gadn.training import averaging, checkpoints, loop

# the average and the expected value round in different orders; the weights are about 1
FLOAT32_ROUNDING = 1e-6


def _dense():
    layer = keras.layers.Dense(3, kernel_initializer=keras.initializers.GlorotUniform(seed=0))
    layer.build((None, 2))
    return layer


def test_the_average_follows_its_formula_and_the_networks_get_their_weights_back():
    layer = _dense()
    w0 = [w.numpy() for w in layer.weights]
    average = averaging.WeightAverage({"dense": layer}, decay=0.5)
    w1 = [w + 1.0 for w in w0]
    for variable, value in zip(layer.weights, w1):
        variable.assign(value)
    average.update(tf.constant(100))  # min(0.5, 101/110) = 0.5
    expected = [0.5 * a + 0.5 * b for a, b in zip(w0, w1)]
    for shadow, value in zip(average.shadows["dense"], expected):
        np.testing.assert_allclose(shadow.numpy(), value, rtol=1e-6, atol=FLOAT32_ROUNDING)
    average.update(tf.constant(0))  # the ramp: min(0.5, 1/10) = 0.1
    expected = [0.1 * a + 0.9 * b for a, b in zip(expected, w1)]
    for shadow, value in zip(average.shadows["dense"], expected):
        np.testing.assert_allclose(shadow.numpy(), value, rtol=1e-6, atol=FLOAT32_ROUNDING)

    with pytest.raises(RuntimeError, match="inside"):
        with average.in_networks():
            for weight, value in zip(layer.weights, expected):
                np.testing.assert_allclose(weight.numpy(), value, rtol=1e-6, atol=FLOAT32_ROUNDING)
            raise RuntimeError("inside")
    for weight, value in zip(layer.weights, w1):  # back, even after an error in the block
        np.testing.assert_array_equal(weight.numpy(), value)

    average.reset()
    for shadow, value in zip(average.shadows["dense"], w1):
        np.testing.assert_array_equal(shadow.numpy(), value)


@pytest.mark.parametrize("decay", [0.0, 1.0, -0.5])
def test_a_decay_outside_0_1_is_refused(decay):
    with pytest.raises(ValueError, match="ema_decay"):
        averaging.WeightAverage({"dense": _dense()}, decay)


def _tensors(config, stage, group):
    reader = tf.train.load_checkpoint(checkpoints.latest(config.model_dir, stage))
    return {
        name: reader.get_tensor(name)
        for name in reader.get_variable_to_shape_map()
        if name.startswith(group + "/")
    }


def test_a_killed_run_resumes_on_the_same_average(tiny_dataset, tmp_path, monkeypatch):
    straight = tiny_config(tiny_dataset, tmp_path / "straight", stage1_steps=6, ema_decay=0.5)
    run_stage(straight, "gadn_stage1")

    killed = tiny_config(tiny_dataset, tmp_path / "killed", stage1_steps=6, ema_decay=0.5)
    run_killed_and_resumed(killed, "gadn_stage1", 3, monkeypatch)
    for group in ("networks", "averaged"):
        assert_same_weights(
            _tensors(straight, "gadn_stage1", group), _tensors(killed, "gadn_stage1", group)
        )


def test_two_replicas_keep_the_single_device_average(tiny_dataset, tmp_path, mirrored_strategy):
    single = tiny_config(tiny_dataset, tmp_path / "single", stage1_steps=2, ema_decay=0.5)
    run_stage(single, "gadn_stage1")
    mirrored = tiny_config(tiny_dataset, tmp_path / "mirrored", stage1_steps=2, ema_decay=0.5)
    run_stage(mirrored, "gadn_stage1", mirrored_strategy)
    assert_same_weights(
        _tensors(single, "gadn_stage1", "averaged"),
        _tensors(mirrored, "gadn_stage1", "averaged"),
        atol=1e-5,
    )


def test_later_stages_and_evaluation_get_the_average(tiny_dataset, tmp_path):
    config = tiny_config(tiny_dataset, tmp_path / "run", stage1_steps=4, ema_decay=0.5)
    run_stage(config, "gadn_stage1")
    averaged = _tensors(config, "gadn_stage1", "averaged")
    raw = _tensors(config, "gadn_stage1", "networks")
    as_raw = {name: raw.get(name.replace("averaged/", "networks/")) for name in averaged}
    assert any(
        value is None or not np.array_equal(averaged[name], value) for name, value in as_raw.items()
    )  # the average is not the trained weights

    def as_saved(
        networks,
    ):  # the networks' float weights, named as the checkpoint names the averages
        return {
            f"averaged/{name}/w{i:04d}/.ATTRIBUTES/VARIABLE_VALUE": w.numpy()
            for name, net in networks.items()
            for i, w in enumerate(averaging.float_weights(net))
        }

    checkpoints.save_run_info(config.model_dir, config, records.read_artists(config.data_dir))
    _, _, trained = checkpoints.load_trained(config.model_dir, "gadn_stage1")
    got = as_saved({n: trained[n] for n in ("encoder", "generator", "style_table")})
    assert_same_weights(got, {k: averaged[k] for k in got})

    # Stage 2 starts from stage 1's average, and its own average starts there too.
    stage, _, ckpt = loop.build_stage(
        config, "gadn_stage2", tf.distribute.get_strategy(), records.read_artists(config.data_dir)
    )
    run_stage(config, "c2_pretrain")
    loop._restore_or_inherit(
        config, stage, ckpt, str(tmp_path / "stage2_ckpt"), checkpoints.FiniteCheck({})
    )
    inherited = {n: stage.networks()[n] for n in ("generator", "style_table")}
    got = as_saved(inherited)
    assert_same_weights(got, {k: averaged[k] for k in got})
    for name, net in inherited.items():
        for weight, shadow in zip(averaging.float_weights(net), stage.weight_average.shadows[name]):
            np.testing.assert_array_equal(weight.numpy(), shadow.numpy())


def test_the_training_curve_scores_the_average(tiny_dataset, tmp_path):
    """--eval_every measures what the stage hands on: the last metrics.csv row is the probe on the averaged networks,
    not on the weights being trained."""
    import csv

    from tf_gadn.evaluation import transfer_eval
    from tf_gadn.gadn.common import transfer_model

    config = tiny_config(
        tiny_dataset, tmp_path / "run", stage1_steps=4, ema_decay=0.5, eval_every=4
    )
    run_stage(config, "gadn_stage1")
    checkpoints.save_run_info(config.model_dir, config, records.read_artists(config.data_dir))
    with open(tmp_path / "run" / "gadn_stage1" / "metrics.csv", encoding="utf-8") as f:
        logged = float(list(csv.DictReader(f))[-1]["transfer_error"])
    probe = transfer_eval.TrainingProbe(
        config.data_dir, config.image_size, str(tmp_path / "run" / "eval"), config.seed
    )
    _, _, averaged = checkpoints.load_trained(config.model_dir, "gadn_stage1")
    assert probe(transfer_model(averaged))["transfer_error"] == pytest.approx(logged, abs=1e-5)

    raw = {n: averaged[n] for n in ("encoder", "generator", "style_table")}
    checkpoints.stage_checkpoint(tf.Variable(0, dtype=tf.int64), raw).restore(
        checkpoints.latest(config.model_dir, "gadn_stage1")
    ).expect_partial()  # the "networks" group only: the trained weights
    assert probe(transfer_model(raw))["transfer_error"] != pytest.approx(logged, abs=1e-5)
