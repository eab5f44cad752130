"""Neural style transfer (Gatys et al.), the evaluation-time baseline: the Gram loss is an exact equation with a
correct gradient, and the optimisation moves an image's Grams toward the target artist's."""

import numpy as np
import tensorflow as tf

from tf_gadn import losses
from tf_gadn.evaluation import neural_style


def test_gram_matrix_by_hand():
    f = np.arange(2 * 2 * 3, dtype=np.float32).reshape(1, 2, 2, 3)
    flat = f.reshape(4, 3)
    np.testing.assert_allclose(losses.gram_matrix(f)[0].numpy(), flat.T @ flat / 4.0, rtol=1e-6)


def test_gram_loss_is_zero_for_identical_feature_maps_and_positive_otherwise():
    f = tf.random.normal([2, 4, 4, 5], seed=3)
    np.testing.assert_allclose(
        losses.gram_style_loss(f, losses.gram_matrix(f)).numpy(), [0.0, 0.0], atol=1e-6
    )
    other = losses.gram_matrix(tf.random.normal([2, 4, 4, 5], seed=4))
    assert np.all(losses.gram_style_loss(f, other).numpy() > 0)


def test_gram_loss_gradient_matches_a_finite_difference():
    rng = np.random.default_rng(0)
    f = rng.normal(size=[1, 3, 3, 4])
    target = losses.gram_matrix(tf.constant(rng.normal(size=[1, 3, 3, 4])))
    x = tf.constant(f)
    with tf.GradientTape() as tape:
        tape.watch(x)
        value = losses.gram_style_loss(x, target)[0]
    analytic = tape.gradient(value, x).numpy()
    h = 1e-6
    for index in [(0, 0, 0, 0), (0, 1, 2, 3), (0, 2, 1, 1)]:
        up, down = f.copy(), f.copy()
        up[index] += h
        down[index] -= h
        numeric = (
            float(losses.gram_style_loss(tf.constant(up), target)[0])
            - float(losses.gram_style_loss(tf.constant(down), target)[0])
        ) / (2 * h)
        np.testing.assert_allclose(analytic[index], numeric, rtol=1e-5, atol=1e-9)


def test_feature_content_loss_by_hand():
    a = np.zeros([1, 2, 2, 1], np.float32)
    b = a.copy()
    b[0, 0, 0, 0] = 2.0  # 1/2 * mean of squares = 1/2 * 4/4
    np.testing.assert_allclose(losses.feature_content_loss(a, b).numpy(), [0.5])


def test_optimisation_moves_the_grams_toward_the_target_artist():
    # a fixed random convolution as the feature network: the method, not a trained net, is under test
    tf.random.set_seed(0)
    inputs = tf.keras.Input((16, 16, 3))
    h, outputs = inputs, []
    for channels in (4, 4, 8, 8, 8, 8, 8, 8):
        h = tf.keras.layers.Conv2D(channels, 3, padding="same", activation="relu")(h)
        outputs.append(h)
    network = tf.keras.Model(inputs, outputs)
    rng = np.random.default_rng(1)
    train = {
        "image": rng.uniform(-1, 1, [4, 16, 16, 3]).astype(np.float32),
        "artist": np.array([0, 0, 1, 1]),
    }
    train["image"][2:] *= 0.2  # artist 1 draws with low contrast: different Grams
    style = neural_style.NeuralStyle(network, train, 2, "single", iterations=30, learning_rate=0.05)
    x = train["image"][:1]

    def style_distance(image):
        features = network(tf.constant(image))
        return sum(
            float(losses.gram_style_loss(features[layer], style.target_grams[i][1:2])[0])
            for i, layer in enumerate(neural_style.STYLE_LAYERS)
        )

    out = style.stylise(x, np.array([1]))
    assert out.shape == x.shape and np.all(np.abs(out) <= 1.0)
    assert style_distance(out) < 0.5 * style_distance(x)
