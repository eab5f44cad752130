"""GADN stages learn what the paper says they learn, on tiny synthetic data with a fixed seed."""

import keras
import numpy as np
import pytest
import tensorflow as tf
from conftest import tiny_config

from tf_gadn import losses
from tf_gadn.data import pipeline, records
from tf_gadn.training.registry import stage_class

TINY = tiny_config("gadn_tiny", stage1_lr=1e-3, c2_lr=1e-3, stage2_lr=1e-3)


def make_stage(name, data_dir, config=TINY, batch=8, seed=1):
    keras.utils.set_random_seed(seed)
    cls = stage_class(name)
    stage = cls(config, [a["count"] for a in records.read_artists(str(data_dir))], batch)
    stage.compile()
    noise = cls.noise_dim(config)
    uniform = cls.uniform_dim(config)
    data = pipeline.make_dataset(
        str(data_dir),
        global_batch_size=batch,
        noise_dim=noise,
        uniform_dim=uniform,
        seed=seed,
        cache=True,
        distinct_other_artist=cls.distinct_other_artist(config),
    )
    return stage, iter(data)


def train(stage, data, steps):
    step = tf.function(stage.train_step)
    history = []
    for _ in range(steps):
        history.append({k: float(v) for k, v in step(next(data)).items()})
        for metric in stage.tracker.values():
            metric.reset_state()
    return history


def weights(network):
    return [v.numpy().copy() for v in network.weights]


def test_stage1_reconstruction_falls(tiny_dataset):
    stage, data = make_stage("gadn_stage1", tiny_dataset)
    history = train(stage, data, 150)
    first = np.mean([h["reconstruction"] for h in history[:10]])
    last = np.mean([h["reconstruction"] for h in history[-10:]])
    assert last < 0.75 * first, (first, last)
    assert all(np.isfinite(list(h.values())).all() for h in history)


def test_stage1_one_generator_pass_serves_both_of_its_uses(tiny_dataset):
    """Stage 1 draws the reconstruction and C1's input in one G pass over both halves: that is the two passes only if
    G treats each example on its own (no batch statistics), which this checks on the built generator."""
    stage, _ = make_stage("gadn_stage1", tiny_dataset)
    codes = tf.random.stateless_normal([8, TINY.content_dim + TINY.style_dim], seed=(2, 3))
    content, style = tf.split(codes, [TINY.content_dim, TINY.style_dim], axis=-1)
    both = stage.generator([tf.concat([content, content], 0), tf.concat([style[::-1], style], 0)])
    np.testing.assert_allclose(both[:8], stage.generator([content, style[::-1]]), atol=1e-6)
    np.testing.assert_allclose(both[8:], stage.generator([content, style]), atol=1e-6)


def test_c2_pretraining_learns_to_name_artists(tiny_dataset):
    stage, data = make_stage("c2_pretrain", tiny_dataset)
    train(stage, data, 120)
    ds = pipeline.make_dataset(
        str(tiny_dataset), global_batch_size=64, shuffle=False, repeat=False, drop_remainder=False
    )
    correct = total = 0
    for batch in ds:
        predicted = np.argmax(stage.classifier2(batch["image"]).numpy(), axis=1)
        correct += int(np.sum(predicted == batch["artist"].numpy()))
        total += len(predicted)
    assert correct / total > 0.7, correct / total  # chance: 0.25


def test_one_stage2_step_moves_g_s_d_c2_and_never_e(tiny_dataset):
    stage, data = make_stage("gadn_stage2", tiny_dataset)
    before = {name: weights(net) for name, net in stage.networks().items()}
    train(stage, data, 1)
    for name, net in stage.networks().items():
        changed = any(not np.array_equal(a, b) for a, b in zip(before[name], weights(net)))
        assert changed == (name != "encoder"), name
    assert not stage.encoder.trainable_variables


def test_non_adversarial_c2_ablation_only_changes_c2(tiny_dataset):
    results = {}
    for adversarial in (True, False):
        stage, data = make_stage(
            "gadn_stage2", tiny_dataset, TINY.replace(adversarial_c2=adversarial)
        )
        train(stage, data, 1)
        results[adversarial] = {
            name: weights(stage.networks()[name]) for name in ("classifier2", "discriminator")
        }
    for a, b in zip(results[True]["discriminator"], results[False]["discriminator"]):
        np.testing.assert_array_equal(a, b)
    assert any(
        not np.array_equal(a, b)
        for a, b in zip(results[True]["classifier2"], results[False]["classifier2"])
    )


def test_mlp_classifier_ablation_trains_on_the_content_code(tiny_dataset):
    stage, data = make_stage("gadn_stage1", tiny_dataset, TINY.replace(stage1_classifier="code"))
    assert "code_classifier" in stage.networks() and "classifier1" not in stage.networks()
    before = weights(stage.networks()["code_classifier"])
    history = train(stage, data, 5)
    assert any(
        not np.array_equal(a, b)
        for a, b in zip(before, weights(stage.networks()["code_classifier"]))
    )
    assert np.isfinite(history[-1]["objective"])
    with pytest.raises(ValueError, match="stage1_classifier"):
        make_stage("gadn_stage1", tiny_dataset, TINY.replace(stage1_classifier="pixels"))


def test_code_adversary_trains_next_to_c1_and_moves_e(tiny_dataset):
    """--stage1_code_adversary keeps C1 on generated images and adds the MLP on E(x). While the MLP names the artist
    better than chance, E's step differs from the step without it; the MLP itself learns in the step."""
    config = TINY.replace(mlp_layers=1, mlp_width=16)
    plain, data = make_stage("gadn_stage1", tiny_dataset, config)
    batch = next(data)
    tf.function(plain.train_step)(batch)
    stage, _ = make_stage("gadn_stage1", tiny_dataset, config.replace(stage1_code_adversary=5.0))
    assert {"classifier1", "code_classifier"} <= set(stage.networks())
    mlp, codes = stage.networks()["code_classifier"], stage.encoder(batch["image"])[0]
    teacher = keras.optimizers.Adam(0.05)
    for _ in range(
        60
    ):  # an MLP that already reads the artists off these codes (NLL far below chance)
        with tf.GradientTape() as tape:
            loss = tf.reduce_mean(losses.nll(mlp(codes), batch["artist"]))
        teacher.apply_gradients(
            zip(tape.gradient(loss, mlp.trainable_variables), mlp.trainable_variables)
        )
    assert float(loss) < 0.5 * np.log(4)
    before = weights(mlp)
    metrics = tf.function(stage.train_step)(batch)
    assert float(metrics["code_classifier_nll"]) < np.log(4)
    assert any(not np.array_equal(a, b) for a, b in zip(before, weights(mlp)))
    assert any(
        not np.allclose(a, b)
        for a, b in zip(weights(plain.networks()["encoder"]), weights(stage.networks()["encoder"]))
    )
    with pytest.raises(ValueError, match="stage1_code_adversary"):
        make_stage(
            "gadn_stage1",
            tiny_dataset,
            config.replace(stage1_code_adversary=1.0, stage1_classifier="code"),
        )


def test_c1_cap_stops_pushing_past_chance(tiny_dataset):
    """Once C1 is worse than a uniform guess, the capped run updates E exactly as a run without the adversary."""
    encoders = {}
    for name, changes in {
        "capped": dict(cap_c1_at_chance=True, lambda_c1=1.0),
        "no_adversary": dict(lambda_c1=0.0),
    }.items():
        stage, data = make_stage("gadn_stage1", tiny_dataset, TINY.replace(**changes))
        head = (
            stage.classifier.out
        )  # C1 names artist 0 for everything, with a margin no single step undoes
        head.kernel.assign(tf.zeros_like(head.kernel))
        head.bias.assign(tf.one_hot(0, stage.num_artists) * 60.0)
        batch = next(data)
        batch["artist"] = tf.ones_like(batch["artist"])
        batch["other_artist"] = tf.zeros_like(batch["other_artist"])
        tf.function(stage.train_step)(batch)
        encoders[name] = weights(stage.encoder)
    for a, b in zip(encoders["capped"], encoders["no_adversary"]):
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-7)


@pytest.mark.parametrize("name", ["c2_pretrain", "gadn_stage2"])
def test_critic_augmentation_trains_the_critics_on_zoomed_views(tiny_dataset, name):
    """--critic_augment: the stage asks the pipeline for uniforms, and one step still moves every critic (and G)."""
    config = TINY.replace(critic_augment=True)
    stage, data = make_stage(name, tiny_dataset, config)
    assert stage_class(name).uniform_dim(config) > 0
    critics = [stage.classifier2] + (
        [stage.discriminator, stage.generator] if name == "gadn_stage2" else []
    )
    before = [weights(n) for n in critics]
    history = train(stage, data, 2)
    assert all(np.isfinite(list(h.values())).all() for h in history)
    for old, network in zip(before, critics):
        assert any(not np.allclose(a, b) for a, b in zip(old, weights(network))), network.name


def own_style_error(stage, tiny_dataset):
    batch = next(
        iter(pipeline.make_dataset(str(tiny_dataset), global_batch_size=32, shuffle=False))
    )
    content, _ = stage.encoder(batch["image"])
    style, _ = stage.style_table(batch["artist"])
    return float(
        tf.reduce_mean(losses.pixel_distance(batch["image"], stage.generator([content, style])))
    )


def test_stage2_reconstruction_flag_keeps_g_drawing_x(tiny_dataset):
    """--stage2_reconstruction: with the term, G redraws x in its own artist's style better than without (same seed)."""
    errors = {}
    for weight in (0.0, 10.0):
        stage, data = make_stage(
            "gadn_stage2", tiny_dataset, TINY.replace(stage2_reconstruction=weight)
        )
        history = train(stage, data, 60)
        assert ("reconstruction" in history[-1]) == (weight > 0)
        errors[weight] = own_style_error(stage, tiny_dataset)
    assert errors[10.0] < 0.9 * errors[0.0], errors  # measured 0.68 vs 0.79
