"""The tf.data input: shapes and ranges, a' ~ p(a) (and a' != a where GADN stage 1 needs it), exact resume by
start_step, worker sharding, one-pass evaluation and independence from TensorFlow's global seed."""

import io
import math
import os

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from tf_gadn.data import color, pipeline, records

COUNTS = [40, 20, 10, 10]  # a skewed p(a)
NUM_SHARDS = 3


def _written_examples():
    """(image, format, artist) in write order; example i stores content_factors [i, ...] as its id."""
    rng = np.random.default_rng(0)
    return [
        (rng.integers(0, 256, (24, 24, 3), dtype=np.uint8), "PNG" if k % 2 else "JPEG", artist)
        for artist, count in enumerate(COUNTS)
        for k in range(count)
    ]


@pytest.fixture(scope="module")
def skewed_data(tmp_path_factory):
    out = tmp_path_factory.mktemp("skewed")
    with records.ShardedWriter(str(out), "train", NUM_SHARDS) as writer:
        for i, (image, fmt, artist) in enumerate(_written_examples()):
            buffer = io.BytesIO()
            Image.fromarray(image).save(buffer, fmt)
            writer.write(
                records.encode_example(
                    buffer.getvalue(),
                    artist,
                    f"a{artist}",
                    str(i),
                    content_factors=[i, 0.5],
                    style_factors=[artist, 1.0, -1.0],
                )
            )
    records.write_artists(
        str(out),
        [{"id": a, "name": f"a{a}", "count": c, "test_count": 0} for a, c in enumerate(COUNTS)],
    )
    records.write_json(
        os.path.join(out, records.DATASET_FILE),
        {
            "image_size": 24,
            "content_factors": ["id", "half"],
            "style_factors": ["artist", "one", "-1"],
        },
    )
    return str(out)


def _ids(batches):
    return np.concatenate([b["content_factors"].numpy()[:, 0] for b in batches]).astype(int)


def test_batch_contract(skewed_data):
    batch = next(
        iter(
            pipeline.make_dataset(
                skewed_data, global_batch_size=8, image_size=16, noise_dim=5, uniform_dim=2
            )
        )
    )
    assert batch["image"].shape == (8, 16, 16, 3) and batch["image"].dtype.name == "float32"
    assert (
        -1.0 <= float(batch["image"].numpy().min()) and float(batch["image"].numpy().max()) <= 1.0
    )
    assert batch["artist"].dtype.name == "int32" and batch["other_artist"].dtype.name == "int32"
    assert batch["noise"].shape == (8, 5) and batch["uniform"].shape == (8, 2)
    assert (
        0.0 <= float(batch["uniform"].numpy().min()) and float(batch["uniform"].numpy().max()) < 1.0
    )
    assert "content_factors" not in batch and "style_factors" not in batch
    plain = next(iter(pipeline.make_dataset(skewed_data, global_batch_size=8)))
    assert set(plain) == {"image", "artist", "other_artist"}  # no noise / uniform unless asked for
    lab = next(iter(pipeline.make_dataset(skewed_data, global_batch_size=8, color="lab")))[
        "image"
    ].numpy()
    assert lab.shape == (8, 24, 24, 3) and np.abs(lab).max() <= 1.0
    np.testing.assert_allclose(lab, color.to_model_space(plain["image"], "lab").numpy(), atol=1e-5)


def test_noise_and_uniform_have_their_distributions(skewed_data):
    batches = list(
        pipeline.make_dataset(skewed_data, global_batch_size=50, noise_dim=8, uniform_dim=8).take(
            10
        )
    )
    noise = np.concatenate([b["noise"].numpy() for b in batches])
    uniform = np.concatenate([b["uniform"].numpy() for b in batches])
    assert abs(noise.mean()) < 0.1 and abs(noise.std() - 1.0) < 0.1  # 4000 draws: 5 standard errors
    assert abs(uniform.mean() - 0.5) < 0.03 and abs(uniform.var() - 1 / 12) < 0.01
    assert len(np.unique(noise[:, 0])) == len(noise)  # a fresh draw for every example


def test_factors_stay_with_their_image(skewed_data):
    artists = [artist for _, _, artist in _written_examples()]
    for batch in pipeline.make_dataset(skewed_data, global_batch_size=16, with_factors=True).take(
        5
    ):
        content, style = batch["content_factors"].numpy(), batch["style_factors"].numpy()
        assert content.shape == (16, 2) and style.shape == (16, 3) and style.dtype == np.float32
        np.testing.assert_array_equal(
            np.array(artists)[content[:, 0].astype(int)], batch["artist"].numpy()
        )
        np.testing.assert_array_equal(style[:, 0], batch["artist"].numpy())


def _other_artists(data_dir, distinct, batches=250):
    ds = pipeline.make_dataset(
        data_dir, global_batch_size=16, distinct_other_artist=distinct, seed=3
    )
    pairs = [(b["artist"].numpy(), b["other_artist"].numpy()) for b in ds.take(batches)]
    return np.concatenate([p[0] for p in pairs]), np.concatenate([p[1] for p in pairs])


def _chi_square_tail(stat, k):
    """Exact P(chi2_k > stat) = Q(k/2, stat/2), closed forms for integer and half-integer k/2 (no scipy)."""
    x = stat / 2.0
    if k % 2 == 0:
        return math.exp(-x) * sum(x**i / math.factorial(i) for i in range(k // 2))
    return math.erfc(math.sqrt(x)) + math.exp(-x) * sum(
        x ** (i - 0.5) / math.gamma(i + 0.5) for i in range(1, k // 2 + 1)
    )


def _chi_square_p_value(observed, expected):
    """Pearson's goodness-of-fit test with len - 1 degrees of freedom."""
    return _chi_square_tail(float(np.sum((observed - expected) ** 2 / expected)), len(observed) - 1)


def test_chi_square_tail_matches_table_values():
    for k, critical_value_at_5_percent in [
        (1, 3.841459),
        (2, 5.991465),
        (3, 7.814728),
        (4, 9.487729),
    ]:
        assert _chi_square_tail(critical_value_at_5_percent, k) == pytest.approx(0.05, rel=1e-5)


def test_other_artist_follows_the_artist_marginal(skewed_data):
    artists, others = _other_artists(skewed_data, distinct=False)
    p = np.array(COUNTS) / sum(COUNTS)
    observed = np.bincount(others, minlength=len(COUNTS))
    assert _chi_square_p_value(observed, p * len(others)) > 1e-3
    assert np.any(artists == others)  # not excluded when not asked to
    uniform = np.full(len(COUNTS), len(others) / len(COUNTS))
    assert _chi_square_p_value(observed, uniform) < 1e-6  # and the test can tell p(a) from uniform


def test_other_artist_differs_when_required(skewed_data):
    artists, others = _other_artists(skewed_data, distinct=True, batches=100)
    assert not np.any(artists == others)
    for a in range(len(COUNTS)):  # p(a' | a) is p restricted to the other artists
        p = np.array(COUNTS, float)
        p[a] = 0
        observed = np.bincount(others[artists == a], minlength=len(COUNTS))
        keep = p > 0
        assert _chi_square_p_value(observed[keep], (p / p.sum() * observed.sum())[keep]) > 1e-3


def test_start_step_resumes_the_exact_stream(skewed_data):
    kwargs = dict(global_batch_size=6, noise_dim=3, uniform_dim=1, seed=9)
    full = list(
        pipeline.make_dataset(skewed_data, **kwargs).take(30)
    )  # > 2 epochs: reshuffles are reproduced too
    resumed = list(pipeline.make_dataset(skewed_data, start_step=25, **kwargs).take(5))
    cached = list(pipeline.make_dataset(skewed_data, start_step=25, cache=True, **kwargs).take(5))
    for expected, got, got_cached in zip(full[25:], resumed, cached):
        for key in expected:
            np.testing.assert_array_equal(expected[key].numpy(), got[key].numpy(), err_msg=key)
            np.testing.assert_array_equal(
                expected[key].numpy(), got_cached[key].numpy(), err_msg=key
            )
    other_seed = next(iter(pipeline.make_dataset(skewed_data, **{**kwargs, "seed": 10})))
    assert not np.array_equal(other_seed["noise"].numpy(), full[0]["noise"].numpy())
    in_file_order = list(pipeline.make_dataset(skewed_data, shuffle=False, **kwargs).take(30))
    resumed = next(iter(pipeline.make_dataset(skewed_data, shuffle=False, start_step=27, **kwargs)))
    for key in resumed:
        np.testing.assert_array_equal(
            in_file_order[27][key].numpy(), resumed[key].numpy(), err_msg=key
        )


def test_mirror_flips_about_half_the_images_and_changes_no_other_draw(skewed_data):
    """--mirror_augment: each image is itself or its left-right mirror, by a coin keyed like the other draws (so a
    resumed run flips the same images), and the order, a', noise and uniforms are those of the unmirrored stream."""
    kwargs = dict(global_batch_size=8, noise_dim=3, uniform_dim=2, seed=3, with_factors=True)
    plain = list(pipeline.make_dataset(skewed_data, **kwargs).take(20))
    mirrored = list(pipeline.make_dataset(skewed_data, mirror=True, **kwargs).take(20))
    flipped = []
    for a, b in zip(plain, mirrored):
        for key in ("artist", "other_artist", "noise", "uniform", "content_factors"):
            np.testing.assert_array_equal(a[key].numpy(), b[key].numpy(), err_msg=key)
        same = np.all(a["image"].numpy() == b["image"].numpy(), axis=(1, 2, 3))
        mirror = np.all(a["image"].numpy()[:, :, ::-1] == b["image"].numpy(), axis=(1, 2, 3))
        assert np.all(same ^ mirror)  # one or the other (random pixels are never symmetric)
        flipped.append(mirror)
    share = np.mean(np.concatenate(flipped))
    assert 0.35 < share < 0.65, share  # 160 fair coins
    resumed = next(iter(pipeline.make_dataset(skewed_data, mirror=True, start_step=13, **kwargs)))
    np.testing.assert_array_equal(resumed["image"].numpy(), mirrored[13]["image"].numpy())


def test_each_epoch_is_a_fresh_permutation_whatever_the_global_seed(skewed_data):
    n = sum(COUNTS)

    def ids(global_seed, seed=4):
        tf.random.set_seed(
            global_seed
        )  # the training loop sets it for weight init; it must not move the stream
        return _ids(
            pipeline.make_dataset(
                skewed_data, global_batch_size=8, with_factors=True, seed=seed
            ).take(2 * n // 8)
        )

    stream = ids(1)
    first_epoch, second_epoch = stream[:n], stream[n:]
    assert sorted(first_epoch) == list(range(n)) and sorted(second_epoch) == list(range(n))
    assert not np.array_equal(first_epoch, np.sort(first_epoch)) and not np.array_equal(
        first_epoch, second_epoch
    )
    np.testing.assert_array_equal(ids(2), stream)
    assert not np.array_equal(ids(1, seed=5), stream)


def test_workers_split_the_stream_by_position(skewed_data):
    kwargs = dict(with_factors=True, noise_dim=2, seed=6)
    single = list(
        pipeline.make_dataset(skewed_data, global_batch_size=8, **kwargs).take(15)
    )  # 1.5 epochs
    workers = [
        list(
            pipeline.make_dataset(
                skewed_data, global_batch_size=4, num_workers=2, worker_index=w, **kwargs
            ).take(15)
        )
        for w in range(2)
    ]
    for key in ("content_factors", "noise", "other_artist"):
        whole = np.concatenate([b[key].numpy() for b in single])
        for w, batches in enumerate(workers):  # worker w holds stream positions p with p % 2 == w
            np.testing.assert_array_equal(
                np.concatenate([b[key].numpy() for b in batches]), whole[w::2]
            )
    for t in range(15):  # so the workers' batch t together is the single pipeline's global batch t
        assert sorted(_ids([workers[0][t], workers[1][t]])) == sorted(_ids([single[t]]))
    resumed = list(
        pipeline.make_dataset(
            skewed_data, global_batch_size=4, num_workers=2, worker_index=1, start_step=10, **kwargs
        ).take(5)
    )
    np.testing.assert_array_equal(_ids(resumed), _ids(workers[1][10:]))


def _eval_pass(data_dir, **kwargs):
    return list(
        pipeline.make_dataset(
            data_dir,
            global_batch_size=7,
            shuffle=False,
            repeat=False,
            drop_remainder=False,
            with_factors=True,
            **kwargs,
        )
    )


def _decoded_by_pil(image, fmt):
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, fmt)
    return np.asarray(Image.open(buffer).convert("RGB"), np.float32) / 127.5 - 1.0


def test_eval_pass_visits_every_example_once_in_file_order(skewed_data):
    examples = _written_examples()
    batches = _eval_pass(skewed_data, image_size=24)
    ids = _ids(batches)
    file_order = sorted(
        range(len(examples)), key=lambda i: (i % NUM_SHARDS, i // NUM_SHARDS)
    )  # shard by shard
    np.testing.assert_array_equal(ids, file_order)
    assert len(batches[-1]["artist"]) == len(examples) % 7  # the remainder is kept
    for image, i in zip(np.concatenate([b["image"].numpy() for b in batches]), ids):
        stored, fmt, _ = examples[i]
        if fmt == "PNG":  # lossless and already 24 px: the exact pixels, no resampling
            np.testing.assert_array_equal(image, stored.astype(np.float32) / 127.5 - 1.0)
        else:  # libjpeg's IDCT may differ from PIL's by a few levels
            assert np.abs(image - _decoded_by_pil(stored, fmt)).max() <= 8 / 127.5
    shards = [_ids(_eval_pass(skewed_data, num_workers=2, worker_index=w)) for w in range(2)]
    assert set(shards[0]).isdisjoint(shards[1]) and sorted(np.concatenate(shards)) == list(
        range(len(examples))
    )


def test_clear_errors(skewed_data, tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        pipeline.make_dataset(str(tmp_path / "missing"), global_batch_size=4)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        pipeline.load_artists(str(tmp_path / "missing"))
    with pytest.raises(FileNotFoundError, match="no 'train' TFRecord shards"):
        pipeline.make_dataset(str(tmp_path), global_batch_size=4)
    with pytest.raises(FileNotFoundError, match="no 'test' TFRecord shards"):
        pipeline.make_dataset(skewed_data, "test", global_batch_size=4)
    with pytest.raises(ValueError, match="global_batch_size"):
        pipeline.make_dataset(skewed_data, global_batch_size=0)
    with pytest.raises(ValueError, match="color"):
        pipeline.make_dataset(skewed_data, global_batch_size=4, color="hsv")
    with pytest.raises(ValueError, match="worker_index"):
        pipeline.make_dataset(skewed_data, global_batch_size=4, num_workers=2, worker_index=2)


def test_atomic_file_replaces_only_a_finished_write(tmp_path):
    path = str(tmp_path / "stats.npz")
    with records.atomic_file(path, ".npz") as tmp:
        np.savez(tmp, value=np.arange(3))
    np.testing.assert_array_equal(np.load(path)["value"], [0, 1, 2])
    with pytest.raises(RuntimeError), records.atomic_file(path, ".npz") as tmp:
        np.savez(tmp, value=np.arange(5))
        raise RuntimeError("killed mid-write")
    np.testing.assert_array_equal(np.load(path)["value"], [0, 1, 2])  # the old file, intact
    assert os.listdir(tmp_path) == ["stats.npz"]  # no temp file left behind
