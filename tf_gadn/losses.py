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
    return 0.5 * tf.reduce_sum(
        tf.square(mean) + tf.square(std) - 1.0 - 2.0 * tf.math.log(std), axis=-1
    )


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
    """||E(G(E(x), S(a'))) - E(x)||_2^2  (GADN L_cont): E(G(..)) is E's mean; E(x) is the code G received (stage 2's
    `content_loss_target` says whether that is the sample, as in the paper, or the mean)."""
    return tf.reduce_sum(tf.square(content_of_fake - content_of_real), axis=-1)


def chance_level(num_artists: int) -> float:
    """-log(1/N): the classifier loss of a uniform guess; the optional cap on the stage-1 adversarial term."""
    return float(tf.math.log(float(num_artists)))


def capped_at_chance(nll, num_artists: int):
    """min(NLL, -log(1/N)): an adversarial term an encoder raises only until the classifier is at chance (the cap of
    the authors' later GADN code; C1's with --cap_c1_at_chance, and both code adversaries')."""
    return tf.minimum(nll, chance_level(num_artists))


# ---- style space: metric learning (equations 2, 3, 10) -------------------------------------------------------------
PREFIX_SCALE_FLOOR = 1e-3  # h_d^2 is used as h_d^2 + floor^2: never 0, and its sign is irrelevant


def same_style_loss(squared_distance):
    """L_same(t) = t^2  (style-space eq. 1/2), written in t^2: same-artist codes are pulled together."""
    return squared_distance


def different_style_loss(squared_distance):
    """L_diff(t) = exp(-t^2)  (style-space eq. 1/2): bounded, so far-apart different artists stop mattering."""
    return tf.exp(-squared_distance)


def prefix_squared_distances(codes, centres):
    """||x^[d] - s^[d]||^2 for every code x [B, D], centre s [A, D] and prefix length d = 1..D -> [B, A, D].

    One cumulative sum of squared coordinate differences gives all D prefixes at once (what makes eq. 3 exact)."""
    return tf.cumsum(tf.square(codes[:, None, :] - centres[None, :, :]), axis=-1)


def nested_dropout_weights(dim: int, t: float):
    """p(d) = (1 - t) t^(d-1) / (1 - t^D), d = 1..D  (style-space eq. 3 and 4): the truncated geometric law of the
    kept prefix length; later dimensions are dropped more often, so the first ones learn the most important factors."""
    if dim < 1 or not 0.0 < t < 1.0:
        raise ValueError(f"nested dropout needs dim >= 1 and 0 < t < 1, got dim={dim}, t={t}")
    return tf.constant([(1.0 - t) * t**k / (1.0 - t**dim) for k in range(dim)], tf.float32)


def nested_dropout_loss(pair_loss, prefix_squared, weights, prefix_scales):
    """L'(x, y) = sum_d p(d) L(h_d ||x^[d] - y^[d]||)  (style-space eq. 3), the expectation over d computed exactly.

    pair_loss: L as a function of the squared distance (same_style_loss / different_style_loss);
    prefix_squared: [..., D] from prefix_squared_distances; weights: [D] nested_dropout_weights; prefix_scales: [D]
    the learned h_d, entering as h_d^2 + PREFIX_SCALE_FLOOR^2 so a prefix's scale can neither vanish nor flip sign."""
    scale_squared = tf.square(prefix_scales) + PREFIX_SCALE_FLOOR**2
    return tf.reduce_sum(weights * pair_loss(scale_squared * prefix_squared), axis=-1)


def prefix_logits(codes, kernel, bias):
    """Logits of a linear classifier that sees only x^[d], for every d = 1..D: [B, D, A] (one cumulative sum)."""
    return tf.cumsum(codes[:, :, None] * kernel[None], axis=1) + bias


def nested_dropout_nll(prefix_logits_, labels, t: float):
    """sum_d p(d) NLL(softmax(W^T x^[d] + b), a): the classification baseline of Figure 1 under the nested dropout of
    style-space eq. (3), p(d) as there, the expectation over d exact. prefix_logits_: [B, D, A] from prefix_logits."""
    dim = int(prefix_logits_.shape[1])
    per_prefix = nll(prefix_logits_, tf.repeat(labels[:, None], dim, axis=1))
    return tf.reduce_sum(nested_dropout_weights(dim, t) * per_prefix, axis=-1)


def representative_style_loss(same_losses, diff_losses, artists, artist_counts):
    """Equation (2) of the style-space paper as a per-example estimate: (same term [B], different term [B]).

    same_losses / diff_losses: [B, A] L_same / L_diff (or L'_same / L'_diff of eq. 3) between S(x) and every s_j;
    artist_counts: [A] |X_i| of the training set. With N = sum_i |X_i|, example x of artist a contributes
        same(x) = N |X_a| L_same(S(x), s_a) / sum_i |X_i|^2,
        diff(x) = N sum_{j != a} |X_j| L_diff(S(x), s_j) / sum_{i != j} |X_i||X_j|,
    so the mean over x drawn uniformly from the training set equals eq. (2) exactly: a batch mean is an unbiased
    estimate of the full-data-set objective (and of its gradient)."""
    counts = tf.cast(artist_counts, tf.float32)
    total = tf.reduce_sum(counts)
    sum_of_squares = tf.reduce_sum(tf.square(counts))
    own = tf.one_hot(artists, tf.shape(counts)[0], dtype=tf.float32)
    same = (
        total
        * tf.gather(counts, artists)
        * tf.reduce_sum(own * same_losses, axis=-1)
        / sum_of_squares
    )
    diff = total * tf.reduce_sum((1.0 - own) * counts * diff_losses, axis=-1)
    return same, tf.math.divide_no_nan(diff, tf.square(total) - sum_of_squares)


def nested_metric_learning_loss(prefix_squared, artists, prefix_scales, artist_counts, t: float):
    """Equation (2) with L'_same, L'_diff of equation (3) in place of L_same, L_diff: (same [B], different [B]).

    prefix_squared: [B, A, D] prefix_squared_distances(S(x), s) (the caller also reads its last slice, the full
    distance, for the nearest-style accuracy)."""
    weights = nested_dropout_weights(int(prefix_squared.shape[-1]), t)
    return representative_style_loss(
        nested_dropout_loss(same_style_loss, prefix_squared, weights, prefix_scales),
        nested_dropout_loss(different_style_loss, prefix_squared, weights, prefix_scales),
        artists,
        artist_counts,
    )


def style_variance_ratio(counts, sums, sums_of_squares):
    """Equation (10) for every prefix length d = 1..D -> [D]: mean within-artist variance / mean squared distance
    between images of different artists (smaller = styles cluster by artist).

    From per-artist sufficient statistics of the codes, not O(N^2) pairs: counts [A] = |X_i|, sums [A, D] =
    sum_{x in X_i} x, sums_of_squares [A, D] = sum_{x in X_i} x^2 (per coordinate). With Q_i = sum ||x||^2,
    m_i = sum x: within = sum_i (Q_i - ||m_i||^2 / |X_i|) / N, and sum_{x in X_i, y in X_j} ||x - y||^2 =
    |X_j| Q_i + |X_i| Q_j - 2 m_i.m_j, summed over i != j as (all pairs) - (same-artist pairs). Every term is a sum
    over coordinates, so a cumulative sum over coordinates gives all prefixes. Use float64 (differences of sums)."""
    counts = tf.convert_to_tensor(counts)
    sums, sums_of_squares = tf.convert_to_tensor(sums), tf.convert_to_tensor(sums_of_squares)
    n = counts[:, None]
    total = tf.reduce_sum(counts)
    within = (
        tf.reduce_sum(sums_of_squares - tf.math.divide_no_nan(tf.square(sums), n), axis=0) / total
    )
    all_pairs = 2.0 * total * tf.reduce_sum(sums_of_squares, axis=0) - 2.0 * tf.square(
        tf.reduce_sum(sums, axis=0)
    )
    same_pairs = tf.reduce_sum(2.0 * n * sums_of_squares - 2.0 * tf.square(sums), axis=0)
    between = (all_pairs - same_pairs) / (tf.square(total) - tf.reduce_sum(tf.square(counts)))
    return tf.cumsum(within) / tf.cumsum(between)


# ---- style space: content VAE and conditional GAN (equations 4-9) --------------------------------------------------
def squared_reconstruction(x, reconstruction):
    """||Dec(S(x), Enc(x)^[d]) - x||^2  (style-space eq. 4, one term): summed over pixels and channels.

    A sum, as the squared norm is written: it is the Gaussian log-likelihood the VAE's KL term is balanced against
    (a per-pixel mean would weigh the KL H*W*3 times more and collapse the code); RMSprop divides the scale out."""
    return tf.reduce_sum(tf.square(reconstruction - x), axis=[1, 2, 3])


def gan_discriminator_real(d_real_logits):
    """-log D(x)  (style-space eq. 5, real term), with D = sigmoid(logit)."""
    return tf.nn.softplus(-d_real_logits)


def gan_discriminator_fake(d_fake_logits):
    """-log(1 - D(G(z)))  (style-space eq. 5, generated term)."""
    return tf.nn.softplus(d_fake_logits)


def gan_generator(d_fake_logits):
    """L_GAN = -log D(G(u, v, w))  (style-space eq. 7; the non-saturating generator loss as written)."""
    return tf.nn.softplus(-d_fake_logits)


def consortium_mean(per_patch_losses):
    """Section 5.2: each of the 3 discriminators' loss averaged over its patches, then averaged over the networks.

    per_patch_losses: one [B, patches] tensor per network -> [B]."""
    return tf.add_n([tf.reduce_mean(loss, axis=-1) for loss in per_patch_losses]) / float(
        len(per_patch_losses)
    )


def style_code_loss(style_of_fake, u):
    """L_style = ||S(G(u, v, w)) - u||^2  (style-space eq. 8), S's output normalised with training-set statistics."""
    return tf.reduce_sum(tf.square(style_of_fake - u), axis=-1)


def code_reconstruction(x, reconstruction):
    """||G(u(x), v(x), 0) - x||  (not in the style-space paper; GADN's L_rec with the per-pixel L2 distance): the
    generator redraws a training image from its own style and content codes (--cond_gan_reconstruction)."""
    return pixel_distance(x, reconstruction)


def content_code_loss(content_of_fake, v):
    """L_content = ||Enc(G(u, v, w)) - v||^2  (style-space eq. 9), Enc = the VAE encoder's mean, variance discarded."""
    return tf.reduce_sum(tf.square(content_of_fake - v), axis=-1)


# ---- StarGAN (Choi et al. 2018, Section 3): a baseline of GADN Section 5 ------------------------------------------
def wgan_critic_real(d_real):
    """-D_src(x)  (StarGAN eq. 8, L_adv's real term for D, WGAN form): the critic raises its score of real images."""
    return -d_real


def wgan_critic_fake(d_fake):
    """D_src(G(x, c))  (StarGAN eq. 8, L_adv's generated term for D)."""
    return d_fake


def wgan_generator(d_fake):
    """-D_src(G(x, c))  (StarGAN eq. 8, L_adv for G): G raises the critic's score of its images."""
    return -d_fake


def gradient_penalty(gradients):
    """(||grad_x^ D_src(x^)||_2 - 1)^2  (StarGAN eq. 8, Gulrajani et al. 2017), per example from [B, ...] gradients."""
    flat = tf.reshape(gradients, [tf.shape(gradients)[0], -1])
    return tf.square(tf.sqrt(tf.reduce_sum(tf.square(flat), axis=-1) + EPS) - 1.0)


def critic_gradient_penalty(critic, real, fake, alpha):
    """gradient_penalty at x^ = alpha x + (1 - alpha) G(x, c), alpha ~ U[0, 1] per example (from the pipeline).

    `critic(images) -> [B]` scores; the gradient is taken inside, so the penalty itself stays differentiable in the
    critic's weights (the double backprop WGAN-GP needs)."""
    alpha = tf.reshape(alpha, [-1, 1, 1, 1])
    interpolated = alpha * real + (1.0 - alpha) * fake
    with tf.GradientTape() as tape:
        tape.watch(interpolated)
        total_score = tf.reduce_sum(
            critic(interpolated)
        )  # each score depends on its own example only
    return gradient_penalty(tape.gradient(total_score, interpolated))


def domain_classification(logits, labels):
    """-log D_cls(c | x)  (StarGAN eqs. 2-3: L_cls^r on real images with their domain c', L_cls^f on G(x, c) with
    the target c). One artist per image, so a softmax over artists (StarGAN's RaFD form) and the NLL of GADN."""
    return nll(logits, labels)


def cycle_reconstruction(x, reconstruction):
    """||x - G(G(x, c), c')||_1  (StarGAN eq. 4, L_rec), the mean absolute error per example as in the authors' code."""
    return tf.reduce_mean(tf.abs(x - reconstruction), axis=[1, 2, 3])


# ---- neural style transfer (Gatys et al. 2016): an evaluation-time baseline -----------------------------------------
def gram_matrix(features):
    """G^l_ij = sum_k F^l_ik F^l_jk / (H W)  (Gatys et al. eq. 3, normalised by the map size): [B, H, W, C] -> [B, C, C]."""
    size = tf.cast(tf.shape(features)[1] * tf.shape(features)[2], features.dtype)
    return tf.einsum("bhwi,bhwj->bij", features, features) / size


def gram_style_loss(features, target_gram):
    """E_l = sum_ij (G^l_ij - A^l_ij)^2 / (4 C^2)  (Gatys et al. eq. 4, with G already divided by H W), per example."""
    channels = tf.cast(tf.shape(features)[-1], features.dtype)
    return tf.reduce_sum(tf.square(gram_matrix(features) - target_gram), axis=[1, 2]) / (
        4.0 * channels * channels
    )


def feature_content_loss(features, target_features):
    """L_content = 1/2 sum (F^l - P^l)^2  (Gatys et al. eq. 1), averaged over positions so layers weigh alike."""
    return 0.5 * tf.reduce_mean(tf.square(features - target_features), axis=[1, 2, 3])
