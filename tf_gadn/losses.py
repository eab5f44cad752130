"""Every paper loss as a small pure function of tensors, named after its equation.

Functions return one value per example ([B]); stages reduce them by the global batch size (Stage.batch_mean), so a
loss means the same on one device or N replicas. Classifier outputs are logits, for numerically stable forms.
"""
from __future__ import annotations

import tensorflow as tf

EPS = 1e-8


# ---- GADN ---------------------------------------------------------------------------------------------------------
def pixel_distance(x, y):
    """||X - Y|| = 1/(hw) sum_ij ||X_ij - Y_ij||_2  (GADN Section 3: per-pixel L2 distance, not its square)."""
    return tf.reduce_mean(tf.sqrt(tf.reduce_sum(tf.square(x - y), axis=-1) + EPS), axis=[1, 2])


def nll(logits, labels):
    """NLL(y, i) = -log y_i  (GADN eqs. for L_C, L_C2-real, L_C2-adv)."""
    return tf.nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=logits)


def nlu(logits, labels):
    """NLU(y, i) = -log(1 - y_i)  (GADN L_C2-fake): C2 learns "not by a'".

    Stable from logits: log(1 - y_i) = logsumexp_{j != i} l_j - logsumexp_j l_j."""
    mask = tf.one_hot(labels, tf.shape(logits)[-1], on_value=True, off_value=False)
    others = tf.reduce_logsumexp(tf.where(mask, tf.fill(tf.shape(logits), -1e30), logits), axis=-1)
    return tf.reduce_logsumexp(logits, axis=-1) - others


def kl_to_standard_normal(mean, std):
    """D_KL(N(mean, diag std^2) || N(0, I)) = 1/2 sum(mean^2 + std^2 - 1 - log std^2)  (GADN L_E-KL, L_S-KL)."""
    return 0.5 * tf.reduce_sum(tf.square(mean) + tf.square(std) - 1.0 - 2.0 * tf.math.log(std), axis=-1)


def lsgan_real(d_real):
    """(D(x) - b)^2 with b = 1  (GADN L_D-real, least squares GAN [19])."""
    return tf.square(d_real - 1.0)


def lsgan_fake(d_fake):
    """(D(G(E(x), S(a'))) - a)^2 with a = -1  (GADN L_D-fake)."""
    return tf.square(d_fake + 1.0)


def lsgan_generator(d_fake):
    """(D(G(E(x), S(a'))) - c)^2 with c = 0  (GADN L_D-adv)."""
    return tf.square(d_fake)


def content_loss(content_of_fake, content_of_real):
    """||E(G(E(x), S(a'))) - E(x)||_2^2  (GADN L_cont), on the means of E (the code E's distribution is centred on)."""
    return tf.reduce_sum(tf.square(content_of_fake - content_of_real), axis=-1)


def chance_level(num_artists: int) -> float:
    """-log(1/N): the classifier loss of a uniform guess; the optional cap on the stage-1 adversarial term."""
    return float(tf.math.log(float(num_artists)))
