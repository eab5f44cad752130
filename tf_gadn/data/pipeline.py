"""TFRecords -> tf.data batches in the contract every stage's train_step reads (see tf_gadn/stages/base.py).

Every random value of a batch (shuffle order, the other artist a' ~ p(a), reparameterisation noise, uniforms for
patches and nested-dropout prefixes) is a pure function of (seed, position of the example in the stream): shuffling is
seeded, and per-example draws use stateless ops keyed by the position. So `start_step=k` yields exactly the batches
from k on (training resumes exactly; the skip happens before decoding, so it is cheap), and splitting a global batch
over replicas changes nothing about the examples or their noise.

How a global batch is formed: the stream is one seeded shuffle of the split, repeated; worker w of W takes stream
positions p with p % W == w, in order, and cuts them into batches of `global_batch_size` (the training loop passes the
per-replica size and the distribute layer hands consecutive batches to consecutive replicas).
"""
from __future__ import annotations

import numpy as np
import tensorflow as tf

from tf_gadn.data import color as colorspace
from tf_gadn.data import records

_MAX_SHUFFLE_BUFFER = 8192


def load_artists(data_dir: str) -> list[dict]:
    return records.read_artists(data_dir)


def _decode(serialized, image_size, color, num_content, num_style):
    example = records.parse_example(serialized, num_content, num_style)
    image = tf.io.decode_image(example["image"], channels=3, expand_animations=False)
    image.set_shape([None, None, 3])
    if image_size:
        image = tf.cast(tf.image.resize(image, [image_size, image_size], antialias=True), tf.float32)
    image = tf.cast(image, tf.float32) / 127.5 - 1.0
    out = {"image": colorspace.to_model_space(image, color), "artist": tf.cast(example["artist_id"], tf.int32)}
    for key in ("content_factors", "style_factors"):
        if key in example:
            out[key] = example[key]
    return out


def _draw(index, example, seed, log_p, noise_dim, uniform_dim, distinct_other_artist):
    """Per-example random values keyed by (seed, stream position): a', noise, uniforms."""
    seeds = tf.random.experimental.stateless_split(tf.stack([tf.cast(seed, tf.int64), index]), 3)
    logits = log_p
    if distinct_other_artist:
        logits = tf.where(tf.range(tf.shape(log_p)[0]) == example["artist"], -np.inf, log_p)
    example["other_artist"] = tf.cast(tf.random.stateless_categorical(logits[None], 1, seeds[0])[0, 0], tf.int32)
    if noise_dim:
        example["noise"] = tf.random.stateless_normal([noise_dim], seeds[1])
    if uniform_dim:
        example["uniform"] = tf.random.stateless_uniform([uniform_dim], seeds[2])
    return example


def make_dataset(data_dir: str, split: str = "train", *, global_batch_size: int, image_size: int | None = None,
                 color: str = "rgb", seed: int = 1, start_step: int = 0, noise_dim: int = 0, uniform_dim: int = 0,
                 distinct_other_artist: bool = False, with_factors: bool = False, shuffle: bool = True,
                 repeat: bool = True, cache: bool = False, drop_remainder: bool = True, num_workers: int = 1,
                 worker_index: int = 0) -> tf.data.Dataset:
    """Batches of {"image", "artist", "other_artist"[, "noise", "uniform", "content_factors", "style_factors"]}."""
    if global_batch_size < 1:
        raise ValueError(f"global_batch_size must be >= 1, got {global_batch_size}")
    if color not in colorspace.COLORS:
        raise ValueError(f"color must be one of {colorspace.COLORS}, got {color!r}")
    if not 0 <= worker_index < num_workers:
        raise ValueError(f"worker_index {worker_index} is not in [0, {num_workers})")
    files = records.shard_paths(data_dir, split)
    artists = records.read_artists(data_dir)
    if distinct_other_artist and len(artists) < 2:
        raise ValueError("a' != a needs at least two artists")
    info = records.read_dataset_info(data_dir)
    num_content = len(info.get("content_factors", [])) if with_factors else 0
    num_style = len(info.get("style_factors", [])) if with_factors else 0
    size = sum(a.get("count" if split == "train" else "test_count", 0) for a in artists) or _MAX_SHUFFLE_BUFFER
    log_p = tf.constant(np.log(records.artist_marginal(artists) + 1e-30), tf.float32)
    decode = lambda s: _decode(s, image_size, color, num_content, num_style)  # noqa: E731
    parallel = dict(num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)

    ds = tf.data.TFRecordDataset(files)
    if cache:  # decoded images are cached; the random draws below stay per stream position
        ds = ds.map(decode, **parallel).cache()
    if shuffle:
        ds = ds.shuffle(min(size, _MAX_SHUFFLE_BUFFER), seed=seed, reshuffle_each_iteration=True)
    if repeat:
        ds = ds.repeat()
    ds = ds.enumerate()
    if num_workers > 1:
        ds = ds.shard(num_workers, worker_index)
    if start_step:
        ds = ds.skip(start_step * global_batch_size)
    if not cache:
        ds = ds.map(lambda i, s: (i, decode(s)), **parallel)
    ds = ds.map(lambda i, e: _draw(i, e, seed, log_p, noise_dim, uniform_dim, distinct_other_artist), **parallel)
    ds = ds.batch(global_batch_size, drop_remainder=drop_remainder).prefetch(tf.data.AUTOTUNE)
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.OFF
    options.deterministic = True
    return ds.with_options(options)
