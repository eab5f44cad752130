"""The on-disk data set format shared by `prepare` (real collections) and `synthetic` (the embedded default).

A data set directory holds sharded TFRecords `<split>-00000-of-00004.tfrecord` (split = train | test), `artists.json`
(id, name, train count, test count) and `dataset.json` (image size, source, factor names). Directories are written
under a temporary name and renamed when complete, so a crash never leaves a half-written data set behind.
"""

from __future__ import annotations

import contextlib
import glob
import hashlib
import json
import os
import shutil
from collections.abc import Iterator, Sequence

import numpy as np
import tensorflow as tf

ARTISTS_FILE = "artists.json"
DATASET_FILE = "dataset.json"
SPLITS = ("train", "test")


def _bytes(value: bytes) -> tf.train.Feature:
    return tf.train.Feature(bytes_list=tf.train.BytesList(value=[value]))


def _ints(values: Sequence[int]) -> tf.train.Feature:
    return tf.train.Feature(int64_list=tf.train.Int64List(value=list(values)))


def _floats(values: Sequence[float]) -> tf.train.Feature:
    return tf.train.Feature(float_list=tf.train.FloatList(value=list(values)))


def encode_example(
    image: bytes,
    artist_id: int,
    artist: str,
    path: str = "",
    content_factors: Sequence[float] | None = None,
    style_factors: Sequence[float] | None = None,
) -> bytes:
    """One serialized tf.train.Example. Factor labels exist only for synthetic data (ground truth)."""
    feature = {
        "image": _bytes(image),
        "artist_id": _ints([artist_id]),
        "artist": _bytes(artist.encode("utf-8")),
        "path": _bytes(path.encode("utf-8")),
        "content_factors": _floats(content_factors or []),
        "style_factors": _floats(style_factors or []),
    }
    return tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString()


def parse_example(
    serialized: tf.Tensor, num_content_factors: int = 0, num_style_factors: int = 0
) -> dict:
    """Parses one serialized example into tensors (image stays encoded: decoding belongs to the pipeline)."""
    spec = {
        "image": tf.io.FixedLenFeature([], tf.string),
        "artist_id": tf.io.FixedLenFeature([], tf.int64),
        "artist": tf.io.FixedLenFeature([], tf.string),
        "path": tf.io.FixedLenFeature([], tf.string, default_value=""),
    }
    if num_content_factors:
        spec["content_factors"] = tf.io.FixedLenFeature([num_content_factors], tf.float32)
    if num_style_factors:
        spec["style_factors"] = tf.io.FixedLenFeature([num_style_factors], tf.float32)
    return tf.io.parse_single_example(serialized, spec)


def shard_name(split: str, index: int, num_shards: int) -> str:
    return f"{split}-{index:05d}-of-{num_shards:05d}.tfrecord"


def shard_paths(data_dir: str, split: str) -> list[str]:
    """Sorted shard files of one split; a clear error if there are none."""
    paths = sorted(glob.glob(os.path.join(data_dir, f"{split}-*-of-*.tfrecord")))
    if not paths:
        raise FileNotFoundError(
            f"no '{split}' TFRecord shards in {data_dir!r}: run `python -m tf_gadn.data.prepare` "
            "or `python -m tf_gadn.data.synthetic` first"
        )
    return paths


def fingerprint(data_dir: str) -> str:
    """A short hash of what a data set holds, cheap to compute: dataset.json, artists.json and every shard's name and
    size. Copies of one data set share it; a regenerated or re-prepared one (another seed, other images) does not."""
    digest = hashlib.sha1()
    for name in (DATASET_FILE, ARTISTS_FILE):
        path = os.path.join(data_dir, name)
        if os.path.exists(path):
            with open(path, "rb") as f:
                digest.update(name.encode() + f.read())
    for path in sorted(glob.glob(os.path.join(data_dir, "*.tfrecord"))):
        digest.update(f"{os.path.basename(path)}:{os.path.getsize(path)}".encode())
    return digest.hexdigest()[:16]


class ShardedWriter:
    """Writes serialized examples round-robin into `num_shards` files of one split."""

    def __init__(self, out_dir: str, split: str, num_shards: int):
        if split not in SPLITS:
            raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
        self._writers = [
            tf.io.TFRecordWriter(os.path.join(out_dir, shard_name(split, i, num_shards)))
            for i in range(num_shards)
        ]
        self.count = 0

    def write(self, serialized: bytes) -> None:
        self._writers[self.count % len(self._writers)].write(serialized)
        self.count += 1

    def close(self) -> None:
        for writer in self._writers:
            writer.close()

    def __enter__(self) -> ShardedWriter:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


@contextlib.contextmanager
def atomic_output_dir(out_dir: str, overwrite: bool = False) -> Iterator[str]:
    """Yields a temporary sibling directory that replaces `out_dir` only if the block finishes without error."""
    out_dir = os.path.abspath(out_dir)
    if os.path.exists(out_dir) and os.listdir(out_dir) and not overwrite:
        raise FileExistsError(
            f"{out_dir!r} exists and is not empty; pass --overwrite to replace it"
        )
    tmp_dir = out_dir.rstrip("/") + ".partial"
    shutil.rmtree(tmp_dir, ignore_errors=True)
    os.makedirs(tmp_dir)
    try:
        yield tmp_dir
    except BaseException:
        shutil.rmtree(tmp_dir, ignore_errors=True)
        raise
    if os.path.exists(out_dir):
        shutil.rmtree(out_dir)
    os.replace(tmp_dir, out_dir)


@contextlib.contextmanager
def atomic_file(path: str, suffix: str = "") -> Iterator[str]:
    """Yields a temporary path next to `path` that replaces `path` only if the block finishes without error, so a
    reader (or a resumed run) never sees half a file. `suffix` keeps the extension writers that infer the format
    from it need (".npz", ".png", ".weights.h5")."""
    tmp = path + ".tmp" + suffix
    try:
        yield tmp
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise
    os.replace(tmp, path)


def write_json(path: str, payload) -> None:
    with atomic_file(path) as tmp, open(tmp, "w", encoding="utf-8") as f:
        json.dump(payload, f, indent=1, ensure_ascii=False)


def write_artists(out_dir: str, artists: Sequence[dict]) -> None:
    """artists: [{'id', 'name', 'count', 'test_count'}], ids 0..N-1 in order."""
    ids = [a["id"] for a in artists]
    if ids != list(range(len(artists))):
        raise ValueError("artist ids must be 0..N-1 in order")
    write_json(os.path.join(out_dir, ARTISTS_FILE), list(artists))


def read_artists(data_dir: str) -> list[dict]:
    path = os.path.join(data_dir, ARTISTS_FILE)
    if not os.path.exists(path):
        raise FileNotFoundError(f"{path!r} is missing: {data_dir!r} is not a tf_gadn data set")
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def read_dataset_info(data_dir: str) -> dict:
    """dataset.json: {'image_size', 'source', 'content_factors': [names], 'style_factors': [names], ...}."""
    path = os.path.join(data_dir, DATASET_FILE)
    if not os.path.exists(path):
        return {"content_factors": [], "style_factors": []}
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def artist_marginal(artists: Sequence[dict]) -> np.ndarray:
    """p(a) over the training split: the distribution a' is drawn from."""
    counts = np.array([a["count"] for a in artists], dtype=np.float64)
    return counts / counts.sum()
