"""The embedded synthetic data set: deterministic, labelled, and with style that really is per artist."""

import json

import numpy as np
import pytest
import tensorflow as tf

from tf_gadn.data import records, synthetic
from tf_gadn.evaluation import probes


def test_render_is_deterministic_and_sized():
    rng = np.random.default_rng(3)
    content, style = synthetic.sample_content(rng), synthetic.artist_style(5, 2)
    for size in (32, 100, 256):
        image = synthetic.render(content, style, size)
        assert image.shape == (size, size, 3) and image.dtype == np.uint8
    np.testing.assert_array_equal(
        synthetic.render(content, style, 64), synthetic.render(content, style, 64)
    )
    assert synthetic.artist_style(5, 2) == style
    assert synthetic.artist_style(6, 2) != style


def test_factor_vectors_invert():
    rng = np.random.default_rng(0)
    content = synthetic.sample_content(rng)
    style = synthetic.jitter_style(synthetic.artist_style(1, 0), rng)
    assert synthetic.content_from_vector(synthetic.content_vector(content)) == content
    assert synthetic.style_from_vector(synthetic.style_vector(style)) == style


def test_dataset_files_counts_and_factor_round_trip(tmp_path):
    out = tmp_path / "synth"
    summary = synthetic.generate_dataset(
        str(out), num_artists=3, images_per_artist=14, image_size=32, seed=4, progress=False
    )
    assert (
        summary["test"] == 3 * 10 and summary["train"] == 3 * 4
    )  # max(10%, 10) held out per artist
    artists = records.read_artists(str(out))
    assert [a["count"] for a in artists] == [4, 4, 4] and [a["test_count"] for a in artists] == [
        10,
        10,
        10,
    ]
    info = json.load(open(out / "dataset.json"))
    assert info["content_factors"] == [n for n, _ in synthetic.CONTENT_FACTORS]
    assert (out / "preview.png").exists()
    raw = next(iter(tf.data.TFRecordDataset(records.shard_paths(str(out), "train"))))
    example = records.parse_example(raw, len(info["content_factors"]), len(info["style_factors"]))
    artist, index = (int(v) for v in example["path"].numpy().decode().split("/")[-2:])
    rng = np.random.default_rng([4, artist, index])
    style = synthetic.jitter_style(synthetic.artist_style(4, artist), rng)
    content = synthetic.sample_content(rng)
    np.testing.assert_allclose(
        example["content_factors"].numpy(), synthetic.content_vector(content), rtol=1e-6
    )
    np.testing.assert_allclose(
        example["style_factors"].numpy(), synthetic.style_vector(style), rtol=1e-6
    )
    decoded = tf.io.decode_png(example["image"]).numpy()
    np.testing.assert_array_equal(decoded, synthetic.render(content, style, 32))


def test_too_few_images_for_the_split_is_a_clear_error(tmp_path):
    with pytest.raises(ValueError, match="no training image"):
        synthetic.generate_dataset(str(tmp_path / "x"), 2, 10, 32, progress=False)
    assert not (tmp_path / "x").exists()


def _images(contents, artists, seed=1, size=32):
    return (
        np.stack(
            [
                synthetic.render(
                    c,
                    synthetic.jitter_style(
                        synthetic.artist_style(seed, a), np.random.default_rng([a, i])
                    ),
                    size,
                )
                for i, (c, a) in enumerate(zip(contents, artists))
            ]
        ).astype(np.float32)
        / 255.0
    )


def test_artist_is_predictable_from_style_alone():
    """Probe trained on some characters, tested on *new* characters drawn by the same artists."""
    rng = np.random.default_rng(11)
    num_artists = 6
    train_contents = [synthetic.sample_content(rng) for _ in range(20)]
    test_contents = [synthetic.sample_content(rng) for _ in range(6)]
    artists = np.arange(num_artists)
    train_x = _images([c for c in train_contents for _ in artists], np.tile(artists, 20))
    test_x = _images([c for c in test_contents for _ in artists], np.tile(artists, 6))
    probe = probes.fit(probes.downsample(train_x, 8), np.tile(artists, 20), num_artists)
    accuracy = probes.score(probe, probes.downsample(test_x, 8), np.tile(artists, 6))
    assert accuracy > 0.6, accuracy  # chance is 1/6


def test_content_survives_a_change_of_artist():
    """Hair colour read by a probe trained on artists 0-4 is still read correctly on artists 5-7."""
    rng = np.random.default_rng(12)
    contents = [synthetic.sample_content(rng) for _ in range(240)]
    artists = np.arange(240) % 8
    x = probes.downsample(_images(contents, artists), 4)
    hair = np.array([c.hair_colour for c in contents])
    seen = artists < 5
    probe = probes.fit(x[seen], hair[seen], 8, l2=10.0)
    accuracy = probes.score(probe, x[~seen], hair[~seen])
    assert accuracy > 0.45, accuracy  # chance is 1/8


def test_line_art_family_is_dark_strokes_on_white_paper_in_the_artists_pen():
    rng = np.random.default_rng(4)
    contents = [synthetic.sample_content(rng) for _ in range(6)]
    drawings = {
        a: np.stack(
            [synthetic.render(c, synthetic.artist_style(1, a), 64, "lineart") for c in contents]
        )
        for a in range(6)
    }
    for images in drawings.values():
        assert np.all(images[..., 0] == images[..., 2])  # grey ink, no colour factors
        assert (
            np.mean(images > 200) > 0.5 and np.mean(images < 80) > 0.02
        )  # mostly paper, some strokes
    # The same characters in different pens differ in how much ink lands on the paper (outline weight, contrast).
    ink = {a: float(np.mean(255 - images)) for a, images in drawings.items()}
    assert max(ink.values()) > 1.3 * min(ink.values())
    portraits = synthetic.render(contents[0], synthetic.artist_style(1, 0), 64)
    assert not np.array_equal(portraits, drawings[0][0])
    with pytest.raises(ValueError):
        synthetic.render(contents[0], synthetic.artist_style(1, 0), 64, "watercolour")
