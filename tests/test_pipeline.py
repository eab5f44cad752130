"""The tf.data input: shapes and ranges, a' ~ p(a) (and a' != a where GADN stage 1 needs it), exact resume by
start_step, worker sharding and one-pass evaluation."""
import io
import math

import numpy as np
import pytest
from PIL import Image

from tf_gadn.data import pipeline, records

COUNTS = [40, 20, 10, 10]  # a skewed p(a)


@pytest.fixture(scope="module")
def skewed_data(tmp_path_factory):
    out = tmp_path_factory.mktemp("skewed")
    rng = np.random.default_rng(0)
    with records.ShardedWriter(str(out), "train", 3) as writer:
        for artist, count in enumerate(COUNTS):
            for k in range(count):
                buffer = io.BytesIO()
                fmt = "PNG" if k % 2 else "JPEG"
                Image.fromarray(rng.integers(0, 256, (24, 24, 3), dtype=np.uint8)).save(buffer, fmt)
                writer.write(records.encode_example(buffer.getvalue(), artist, f"a{artist}", f"{artist}/{k}"))
    records.write_artists(str(out), [{"id": a, "name": f"a{a}", "count": c, "test_count": 0}
                                     for a, c in enumerate(COUNTS)])
    return str(out)


def test_batch_contract(skewed_data):
    batch = next(iter(pipeline.make_dataset(skewed_data, global_batch_size=8, image_size=16, noise_dim=5,
                                            uniform_dim=2)))
    assert batch["image"].shape == (8, 16, 16, 3) and batch["image"].dtype.name == "float32"
    assert -1.0 <= float(batch["image"].numpy().min()) and float(batch["image"].numpy().max()) <= 1.0
    assert batch["artist"].dtype.name == "int32" and batch["other_artist"].dtype.name == "int32"
    assert batch["noise"].shape == (8, 5) and batch["uniform"].shape == (8, 2)
    assert 0.0 <= float(batch["uniform"].numpy().min()) and float(batch["uniform"].numpy().max()) < 1.0
    lab = next(iter(pipeline.make_dataset(skewed_data, global_batch_size=8, color="lab")))["image"].numpy()
    assert lab.shape == (8, 24, 24, 3) and np.abs(lab).max() <= 1.0


def _other_artists(data_dir, distinct, batches=250):
    ds = pipeline.make_dataset(data_dir, global_batch_size=16, distinct_other_artist=distinct, seed=3)
    pairs = [(b["artist"].numpy(), b["other_artist"].numpy()) for b in ds.take(batches)]
    return np.concatenate([p[0] for p in pairs]), np.concatenate([p[1] for p in pairs])


def _chi_square_p_value(observed, expected):
    """Upper tail of the chi-square distribution (Wilson-Hilferty normal approximation)."""
    stat = float(np.sum((observed - expected) ** 2 / expected))
    k = len(observed) - 1
    z = ((stat / k) ** (1 / 3) - (1 - 2 / (9 * k))) / math.sqrt(2 / (9 * k))
    return 0.5 * math.erfc(z / math.sqrt(2))


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
    full = list(pipeline.make_dataset(skewed_data, **kwargs).take(30))  # > 2 epochs: reshuffles are reproduced too
    resumed = list(pipeline.make_dataset(skewed_data, start_step=25, **kwargs).take(5))
    for expected, got in zip(full[25:], resumed):
        for key in expected:
            np.testing.assert_array_equal(expected[key].numpy(), got[key].numpy(), err_msg=key)
    cached = next(iter(pipeline.make_dataset(skewed_data, start_step=25, cache=True, **kwargs)))
    np.testing.assert_array_equal(cached["artist"].numpy(), full[25]["artist"].numpy())
    np.testing.assert_allclose(cached["image"].numpy(), full[25]["image"].numpy())
    other_seed = next(iter(pipeline.make_dataset(skewed_data, **{**kwargs, "seed": 10})))
    assert not np.array_equal(other_seed["noise"].numpy(), full[0]["noise"].numpy())


def _paths(data_dir, **kwargs):
    ds = pipeline.make_dataset(data_dir, global_batch_size=7, shuffle=False, repeat=False, drop_remainder=False,
                               **kwargs)
    return [tuple(x) for b in ds for x in zip(b["artist"].numpy(), b["image"].numpy().reshape(len(b["artist"]), -1)[:, :4].tolist())]


def test_eval_pass_and_worker_shards_cover_the_data_once(skewed_data):
    everything = _paths(skewed_data)
    assert len(everything) == sum(COUNTS)
    shards = [_paths(skewed_data, num_workers=2, worker_index=w) for w in range(2)]
    assert len(shards[0]) + len(shards[1]) == sum(COUNTS)
    assert sorted(map(str, shards[0] + shards[1])) == sorted(map(str, everything))


def test_clear_errors(skewed_data, tmp_path):
    with pytest.raises(FileNotFoundError, match="no 'train' TFRecord shards"):
        pipeline.make_dataset(str(tmp_path), global_batch_size=4)
    with pytest.raises(ValueError, match="global_batch_size"):
        pipeline.make_dataset(skewed_data, global_batch_size=0)
    with pytest.raises(ValueError, match="color"):
        pipeline.make_dataset(skewed_data, global_batch_size=4, color="hsv")
