"""StarGAN, the third method (a baseline of GADN Section 5): its losses equal their equations computed by hand, one
step trains D always and G every n_critic steps, a tiny run trains through the shared loop and exports the same
signatures the server and client use."""

import numpy as np
import pytest
import tensorflow as tf
from conftest import tiny_config

from tf_gadn import losses
from tf_gadn.data import records
from tf_gadn.stargan.stage import StarGanStage
from tf_gadn.training import loop


def test_wgan_terms_are_the_scores_with_their_signs():
    scores = np.array([1.5, -0.5], np.float32)
    np.testing.assert_allclose(losses.wgan_critic_real(scores), -scores)
    np.testing.assert_allclose(losses.wgan_critic_fake(scores), scores)
    np.testing.assert_allclose(losses.wgan_generator(scores), -scores)


def test_gradient_penalty_of_a_linear_critic_is_its_weight_norm_minus_one_squared():
    # D(x) = sum(w * x): the gradient is w at every interpolate, whatever alpha
    w = tf.constant(np.random.default_rng(0).normal(size=[1, 4, 4, 3]).astype(np.float32))
    real = tf.random.normal([2, 4, 4, 3], seed=1)
    fake = tf.random.normal([2, 4, 4, 3], seed=2)
    penalty = losses.critic_gradient_penalty(
        lambda x: tf.reduce_sum(w * x, axis=[1, 2, 3]), real, fake, tf.constant([0.2, 0.9])
    )
    expected = (np.sqrt(np.sum(w.numpy() ** 2)) - 1.0) ** 2
    np.testing.assert_allclose(penalty.numpy(), [expected, expected], rtol=1e-4)


def test_gradient_penalty_of_a_quadratic_critic_is_evaluated_at_the_interpolate():
    # D(x) = 1/2 ||x||^2: the gradient is x^ = alpha x + (1 - alpha) x_fake itself
    rng = np.random.default_rng(1)
    real, fake = (rng.normal(size=[2, 3, 3, 3]).astype(np.float32) for _ in range(2))
    alpha = np.array([0.25, 0.75], np.float32)
    penalty = losses.critic_gradient_penalty(
        lambda x: 0.5 * tf.reduce_sum(tf.square(x), axis=[1, 2, 3]), real, fake, alpha
    )
    interpolate = alpha[:, None, None, None] * real + (1 - alpha[:, None, None, None]) * fake
    expected = (np.sqrt(np.sum(interpolate**2, axis=(1, 2, 3))) - 1.0) ** 2
    np.testing.assert_allclose(penalty.numpy(), expected, rtol=1e-4)


def test_gradient_penalty_trains_the_critic_through_its_own_gradient():
    # WGAN-GP needs the penalty's gradient in the critic's weights (double backprop): d/dw (|w| - 1)^2
    w = tf.Variable(np.full([1, 2, 2, 1], 1.0, np.float32))  # |w| = 2
    x = tf.ones([1, 2, 2, 1])
    with tf.GradientTape() as tape:
        penalty = losses.critic_gradient_penalty(
            lambda im: tf.reduce_sum(w * im, axis=[1, 2, 3]), x, x, tf.constant([0.5])
        )
    # (|w| - 1)^2 with |w| = 2 -> gradient 2 (|w| - 1) w / |w| = w
    np.testing.assert_allclose(tape.gradient(penalty, w).numpy(), w.numpy(), rtol=1e-4)


def test_domain_classification_and_cycle_reconstruction_by_hand():
    logits = np.array([[1.0, 2.0, 0.0]], np.float32)
    p = np.exp(logits[0]) / np.exp(logits[0]).sum()
    np.testing.assert_allclose(
        losses.domain_classification(logits, np.array([1])).numpy(), [-np.log(p[1])], rtol=1e-5
    )
    x = np.zeros([1, 2, 2, 3], np.float32)
    y = x.copy()
    y[0, 0, 0] = [1.2, -0.6, 0.0]  # |.|_1 of 1.8 over 12 values
    np.testing.assert_allclose(losses.cycle_reconstruction(x, y).numpy(), [0.15], rtol=1e-5)


def _stage_and_batches(tiny_dataset, tmp_path, steps, **changes):
    config = tiny_config(
        "stargan_tiny", data_dir=str(tiny_dataset), model_dir=str(tmp_path), seed=3, **changes
    )
    artists = records.read_artists(str(tiny_dataset))
    stage = StarGanStage(config, [a["count"] for a in artists], StarGanStage.batch_size(config))
    stage.compile()
    batches = loop.stage_dataset(config, StarGanStage, StarGanStage.batch_size(config)).take(steps)
    return config, stage, list(batches)


def _weights(network):
    return [np.array(v.numpy()) for v in network.weights]


def _moved(before, after):
    return any(not np.array_equal(b, a) for b, a in zip(before, after))


@pytest.mark.parametrize("accumulate_steps", [1, 2])
def test_a_step_moves_the_critic_always_and_the_generator_every_n_critic_steps(
    accumulate_steps, tiny_dataset, tmp_path
):
    """Also with micro-batches: the condition is read before the step's critic update, as in the unsplit step."""
    config, stage, batches = _stage_and_batches(
        tiny_dataset, tmp_path, 3, accumulate_steps=accumulate_steps
    )
    assert config.stargan_n_critic == 2
    step = tf.function(stage.train_step)
    moved = []
    for batch in batches:
        before = {name: _weights(net) for name, net in stage.networks().items()}
        values = step(batch)
        assert all(np.isfinite(float(v)) for v in values.values()), values
        moved.append(
            {name for name, net in stage.networks().items() if _moved(before[name], _weights(net))}
        )
    assert moved == [
        {"generator", "discriminator"},
        {"discriminator"},
        {"generator", "discriminator"},
    ]
    assert float(stage.results()["gradient_penalty"]) > 0.0


def test_generator_sees_the_target_label(tiny_dataset, tmp_path):
    # StarGAN conditions G on c' broadcast onto x: two labels give two images of one input
    _, stage, batches = _stage_and_batches(tiny_dataset, tmp_path, 1)
    x = batches[0]["image"][:1]
    first = stage.generator([x, tf.one_hot([0], stage.num_artists)])
    second = stage.generator([x, tf.one_hot([1], stage.num_artists)])
    assert float(tf.reduce_max(tf.abs(first - second))) > 1e-4


def test_a_tiny_run_trains_and_writes_its_grid(tiny_stargan_run):
    assert (tiny_stargan_run / "stargan" / "DONE").exists()
    assert (tiny_stargan_run / "style_x_content.png").exists()


def test_export_serves_transfer_by_name_like_the_other_methods(tiny_stargan_run, tmp_path):
    from tf_gadn.serving import export
    from tf_gadn.training import checkpoints

    path = export.export(str(tiny_stargan_run), str(tmp_path), "stargan")
    served = tf.saved_model.load(path)
    assert {"transfer", "transfer_by_name", "transfer_encoded_by_name", "classify"} <= set(
        served.signatures
    )
    _, artists, networks = checkpoints.load_trained(str(tiny_stargan_run))
    image = np.random.default_rng(0).integers(0, 256, [1, 32, 32, 3]).astype(np.uint8)
    out = served.signatures["transfer_by_name"](
        image=tf.constant(image), artist=tf.constant([artists[2]["name"]])
    )["image"].numpy()
    expected = networks["generator"](
        [tf.constant(image, tf.float32) / 127.5 - 1.0, tf.one_hot([2], len(artists))]
    ).numpy()
    expected = np.clip(np.round((expected + 1.0) * 127.5), 0, 255)
    assert np.max(np.abs(out.astype(np.int32) - expected.astype(np.int32))) <= 1
