"""TFRecords -> tf.data batches in the contract every stage's train_step reads (see tf_gadn/training/stage.py).

Every random value of a batch (shuffle order, the other artist a' ~ p(a), reparameterisation noise, uniforms for
patches and nested-dropout prefixes) is a pure function of (seed, position of the example in the stream), computed
with stateless ops only, so the TF global seed (tf.random.set_seed) changes nothing. The shuffle permutes each epoch
in chunks of up to 8192 records with `index_shuffle` keyed by (seed, epoch, chunk) -- a split of at most 8192 images
gets a full uniform permutation, a new one every epoch -- and the per-example draws are keyed by (seed, position).
So `start_step=k` yields exactly the batches from k on (training resumes exactly; whole epochs are skipped by
arithmetic and the rest on raw serialized records, before decoding, so it is cheap), and splitting a global batch over
replicas changes nothing about the examples or their noise.

How a global batch is formed: the stream is the shuffled split, epoch after epoch; position p of the stream is
example p. Worker w of W (num_workers / worker_index) takes the positions p with p % W == w, in order, and cuts them
into batches of `global_batch_size`; so for W = 1 batch t holds positions [t*B, (t+1)*B), and the W workers' t-th
batches together hold positions [t*W*B, (t+1)*W*B). The training loop (tf_gadn/training/loop.py) builds one pipeline per
input worker with B = the per-replica batch and start_step scaled by the replicas it feeds, and
distribute_datasets_from_function hands consecutive batches to consecutive replicas, so the replicas of step t hold
exactly the global batch t a single device would see. Auto-sharding by tf.distribute is switched off (we shard).
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from tf_gadn.data import color as colorspace
from tf_gadn.data import records

_SHUFFLE_CHUNK = 8192
_SHUFFLE_SALT = (
    0x5EED  # keeps the shuffle's seeds apart from the per-example draws keyed by (seed, position)
)
_MIRROR_SALT = 0xF11B  # the mirror coin's fold of an example's (seed, position) key


def _require_dir(data_dir: str) -> None:
    if not tf.io.gfile.isdir(data_dir):
        raise FileNotFoundError(f"data directory {data_dir!r} does not exist")


def load_artists(data_dir: str) -> list[dict]:
    """artists.json of a data set: [{'id', 'name', 'count', 'test_count'}]; 'count' is the train split's p(a)."""
    _require_dir(data_dir)
    return records.read_artists(data_dir)


def _count_records(files: list[str]) -> int:
    """Records in a split: one pass over the raw bytes, no parsing or decoding."""
    return int(tf.data.TFRecordDataset(files).reduce(np.int64(0), lambda n, _: n + 1))


# XLA fuses the ~20 elementwise passes of the Lab conversion into one: ~3x faster per image on CPU (BUILD.md, data
# speed table).
_rgb_m11_to_lab_model_space = tf.function(
    lambda rgb_m11: colorspace.to_model_space(rgb_m11, "lab"), jit_compile=True
)


def _decode(serialized, image_size, color, num_content, num_style):
    """Serialized example -> model-space image (resized only if its stored size differs), artist and factors."""
    example = records.parse_example(serialized, num_content, num_style)
    image = tf.io.decode_image(example["image"], channels=3, expand_animations=False)
    image.set_shape([None, None, 3])
    image = tf.cast(image, tf.float32)
    if image_size:
        stored_size_matches = tf.reduce_all(tf.shape(image)[:2] == image_size)
        image = tf.cond(
            stored_size_matches,
            lambda: image,
            lambda: tf.clip_by_value(
                tf.image.resize(image, [image_size, image_size], antialias=True), 0.0, 255.0
            ),
        )
        image.set_shape([image_size, image_size, 3])
    rgb_m11 = image / 127.5 - 1.0
    out = {
        "image": rgb_m11 if color == "rgb" else _rgb_m11_to_lab_model_space(rgb_m11),
        "artist": tf.cast(example["artist_id"], tf.int32),
    }
    for key in ("content_factors", "style_factors"):
        if key in example:
            out[key] = example[key]
    return out


def _shuffled_epoch(blocks, seed):
    """epoch -> that epoch's elements in a stateless order: chunk c of epoch e permuted by index_shuffle keyed by
    (seed, e, c).

    blocks: the split as a dataset of stacked chunks in storage order. Shuffling within a chunk only is why writers
    should store a split larger than one chunk in random order (a shuffle buffer would have the same limit)."""
    epoch_seed = tf.constant([seed, _SHUFFLE_SALT], tf.int64)

    def one_epoch(epoch):
        def permuted_chunk(chunk_index, block):
            key = tf.random.experimental.stateless_fold_in(
                tf.random.experimental.stateless_fold_in(epoch_seed, epoch), chunk_index
            )
            n = tf.shape(tf.nest.flatten(block)[0], out_type=tf.int64)[0]
            order = tf.random.experimental.index_shuffle(tf.range(n), key, n - 1)
            return tf.data.Dataset.from_tensor_slices(order).map(
                lambda i: tf.nest.map_structure(lambda t: tf.gather(t, i), block)
            )

        return blocks.enumerate().flat_map(permuted_chunk)

    return one_epoch


def _draw(index, example, seed, log_p, noise_dim, uniform_dim, distinct_other_artist, mirror):
    """Per-example random values keyed by (seed, stream position): a', noise, uniforms, and (mirror) a coin that
    flips the image left to right."""
    key = tf.stack([tf.cast(seed, tf.int64), index])
    seeds = tf.random.experimental.stateless_split(key, 3)
    logits = log_p
    if distinct_other_artist:  # p restricted to the other artists; categorical renormalises
        logits = tf.where(tf.range(tf.shape(log_p)[0]) == example["artist"], -np.inf, log_p)
    example["other_artist"] = tf.cast(
        tf.random.stateless_categorical(logits[None], 1, seeds[0])[0, 0], tf.int32
    )
    if noise_dim:
        example["noise"] = tf.random.stateless_normal([noise_dim], seeds[1])
    if uniform_dim:
        example["uniform"] = tf.random.stateless_uniform([uniform_dim], seeds[2])
    if mirror:  # its own fold of the key, so the draws above are the same with and without it
        coin = tf.random.stateless_uniform(
            [], tf.random.experimental.stateless_fold_in(key, _MIRROR_SALT)
        )
        example["image"] = tf.cond(
            coin < 0.5, lambda: tf.image.flip_left_right(example["image"]), lambda: example["image"]
        )
    return example


def make_dataset(
    data_dir: str,
    split: str = "train",
    *,
    global_batch_size: int,
    image_size: int | None = None,
    color: str = "rgb",
    seed: int = 1,
    start_step: int = 0,
    noise_dim: int = 0,
    uniform_dim: int = 0,
    distinct_other_artist: bool = False,
    mirror: bool = False,
    with_factors: bool = False,
    shuffle: bool = True,
    repeat: bool = True,
    cache: bool = False,
    drop_remainder: bool = True,
    num_workers: int = 1,
    worker_index: int = 0,
) -> tf.data.Dataset:
    """Batches of {"image", "artist", "other_artist"[, "noise", "uniform", "content_factors", "style_factors"]}.

    a' is drawn from p(a) of the TRAIN split (artists.json 'count') whatever `split` is. cache=True keeps the decoded
    model-space images in memory (float32, S*S*12 bytes each, twice that while the cache is first built; every worker
    caches the whole split) and shuffles the whole split as one chunk. shuffle=False, repeat=False,
    drop_remainder=False visits the split once, in file order (evaluation).

    Args:
        data_dir: a data set written by tf_gadn.data.prepare or tf_gadn.data.synthetic.
        split: "train" or "test".
        global_batch_size: examples per batch (per input pipeline under tf.distribute: the loop passes its share).
        image_size: side S the images are resized to (None: as stored).
        color: "rgb" or "lab" (normalised Lab), the stage's colour space; images are in [-1, 1].
        seed: with `start_step`, fixes the order, a', noise and uniforms of every batch (exact resume).
        start_step: index of the first batch (a resumed run starts where it stopped).
        noise_dim: width of "noise" (standard normals; 0: no such key); a stage's `noise_dim(config)`.
        uniform_dim: width of "uniform" (U[0, 1); 0: no such key); a stage's `uniform_dim(config)`.
        distinct_other_artist: draw a' != a (GADN stage 1).
        mirror: flip each image left to right with probability 1/2, keyed like the other draws (--mirror_augment);
            its factors stay as stored (training never reads them).
        with_factors: add the synthetic data set's "content_factors" and "style_factors".
        shuffle, repeat, cache, drop_remainder: as above.
        num_workers, worker_index: this input pipeline's shard of the examples (multi-worker training).

    Returns:
        A tf.data.Dataset of dicts: "image" float32 [B, S, S, 3], "artist" and "other_artist" int32 [B], and the
        optional keys above.
    """
    if global_batch_size < 1:
        raise ValueError(f"global_batch_size must be >= 1, got {global_batch_size}")
    if color not in colorspace.COLORS:
        raise ValueError(f"color must be one of {colorspace.COLORS}, got {color!r}")
    if not 0 <= worker_index < num_workers:
        raise ValueError(f"worker_index {worker_index} is not in [0, {num_workers})")
    if start_step < 0:
        raise ValueError(f"start_step must be >= 0, got {start_step}")
    _require_dir(data_dir)
    files = records.shard_paths(data_dir, split)
    if repeat and not any(tf.io.gfile.stat(f).length for f in files):
        raise ValueError(
            f"the '{split}' shards in {data_dir!r} hold no records"
        )  # repeating nothing never ends
    artists = records.read_artists(data_dir)
    if distinct_other_artist and len(artists) < 2:
        raise ValueError("a' != a needs at least two artists")
    info = records.read_dataset_info(data_dir)
    num_content = len(info.get("content_factors", [])) if with_factors else 0
    num_style = len(info.get("style_factors", [])) if with_factors else 0
    log_p = tf.constant(np.log(records.artist_marginal(artists) + 1e-30), tf.float32)
    decode = lambda s: _decode(s, image_size, color, num_content, num_style)  # noqa: E731
    parallel = dict(num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)

    stored = tf.data.TFRecordDataset(files)
    if cache:  # the decoded images are cached; the shuffle and the random draws below still vary per epoch/position
        stored = stored.map(decode, **parallel)
    if shuffle:
        # a cached split is cached as one stacked chunk: it is in memory anyway, and no epoch copies it again
        blocks = (
            stored.batch(np.iinfo(np.int64).max).cache() if cache else stored.batch(_SHUFFLE_CHUNK)
        )
        epoch_stream = _shuffled_epoch(blocks, seed)
    else:
        stored = stored.cache() if cache else stored
        epoch_stream = lambda epoch: stored  # noqa: E731
    # Resuming: whole epochs are skipped by arithmetic (every epoch is a function of its number), the rest of one
    # epoch on raw records. A multiple of num_workers is skipped, so shard() below still gives worker w p % W == w.
    skipped_positions, first_epoch, epoch_size = start_step * global_batch_size * num_workers, 0, 0
    if repeat and skipped_positions:
        epoch_size = _count_records(files)
        first_epoch, skipped_positions = divmod(skipped_positions, epoch_size)
    epochs = tf.data.Dataset.counter(first_epoch) if repeat else tf.data.Dataset.range(1)
    ds = epochs.flat_map(epoch_stream).enumerate(first_epoch * epoch_size).skip(skipped_positions)
    if num_workers > 1:
        ds = ds.shard(num_workers, worker_index)
    if not cache:
        ds = ds.map(lambda i, s: (i, decode(s)), **parallel)
    ds = ds.map(
        lambda i, e: _draw(
            i, e, seed, log_p, noise_dim, uniform_dim, distinct_other_artist, mirror
        ),
        **parallel,
    )
    ds = ds.batch(global_batch_size, drop_remainder=drop_remainder).prefetch(tf.data.AUTOTUNE)
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.OFF
    options.deterministic = True
    return ds.with_options(options)
