"""Export: the SavedModel's signatures, their wire formats, versioning, and parity with the Keras networks."""

import json
import os
import struct
import subprocess
import sys
import time
import zlib

import numpy as np
import pytest
import tensorflow as tf
from conftest import tiny_config

from tf_gadn.data.prepare import encode_png as png
from tf_gadn.gadn.stage1 import load_content_stats
from tf_gadn.serving import export
from tf_gadn.training import checkpoints

SIGNATURES = {
    "serving_default",
    "transfer",
    "transfer_by_name",
    "transfer_encoded",
    "transfer_encoded_by_name",
    "generate",
    "encode_content",
    "encode_content_encoded",
    "classify",
    "classify_encoded",
    "sample",
    "sample_by_name",
}


@pytest.fixture(scope="module")
def served(tiny_gadn_export):
    return tf.saved_model.load(str(tiny_gadn_export / "gadn" / "1"))


@pytest.fixture(scope="module")
def keras_nets(tiny_gadn_run):
    return checkpoints.load_trained(str(tiny_gadn_run))


def images(n, size=32, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (n, size, size, 3)).astype(np.uint8)


def test_saved_model_cli_lists_every_signature(tiny_gadn_export):
    version_dir = tiny_gadn_export / "gadn" / "1"
    cli = os.path.join(os.path.dirname(sys.executable), "saved_model_cli")
    shown = subprocess.run(
        [cli, "show", "--dir", str(version_dir), "--all"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    for name in SIGNATURES | {"sample_random_style"}:
        assert f"signature_def['{name}']" in shown
    assert "(-1, -1, -1, 3)" in shown  # batch and image size dynamic
    artists = json.load(open(version_dir / "assets" / "artists.json"))
    assert [a["name"] for a in artists] == ["artist_00", "artist_01", "artist_02", "artist_03"]


def test_reloaded_model_matches_keras_networks(served, keras_nets, tiny_gadn_run):
    _, _, nets = keras_nets
    x = images(3)
    a = np.array([0, 3, 1], np.int32)
    x_m11 = tf.constant(x, tf.float32) / 127.5 - 1.0
    content, std = nets["encoder"](x_m11)
    style, _ = nets["style_table"](tf.constant(a))
    expected = np.round((nets["generator"]([content, style]).numpy() + 1.0) * 127.5).clip(0, 255)
    got = served.signatures["transfer"](image=tf.constant(x), artist_id=tf.constant(a))[
        "image"
    ].numpy()
    assert got.dtype == np.uint8 and got.shape == (3, 32, 32, 3)
    assert np.abs(got.astype(int) - expected).max() <= 1  # float rounding may flip one level
    encoded = served.signatures["encode_content"](image=tf.constant(x))
    np.testing.assert_allclose(encoded["content_mean"], content, atol=1e-5)
    np.testing.assert_allclose(encoded["content_std"], std, atol=1e-5)
    logits = served.signatures["classify"](image=tf.constant(x))
    np.testing.assert_allclose(logits["logits"], nets["classifier2"](x_m11), atol=1e-5)
    assert list(logits["artist"].numpy()) == [
        f"artist_{i:02d}".encode() for i in np.argmax(logits["logits"], 1)
    ]
    codes = np.random.default_rng(1).standard_normal((2, 8)).astype(np.float32)
    generated = served.signatures["generate"](
        content=tf.constant(codes), style=tf.constant(codes[::-1])
    )["image"]
    expected = np.round((nets["generator"]([codes, codes[::-1]]).numpy() + 1.0) * 127.5).clip(
        0, 255
    )
    assert np.abs(generated.numpy().astype(int) - expected).max() <= 1


def test_sample_draws_content_from_the_fitted_normal(served, tiny_gadn_run):
    sample = served.signatures["sample"]
    ids = tf.constant([2, 2, 2], tf.int32)
    first = sample(artist_id=ids, seed=tf.constant([5, 5, 6], tf.int64))
    np.testing.assert_array_equal(
        first["content"][0], first["content"][1]
    )  # same seed, same portrait
    assert not np.allclose(first["content"][0], first["content"][2])
    many = sample(artist_id=tf.fill([400], 0), seed=tf.range(400, dtype=tf.int64))[
        "content"
    ].numpy()
    stats = load_content_stats(str(tiny_gadn_run))
    spread = np.sqrt(np.diag(stats["cov"])) + 1e-3
    assert (
        np.abs((many.mean(0) - stats["mean"]) / spread).max() < 0.35
    )  # 400 draws: 5 standard errors is 0.25


def test_wire_variants_agree(served):
    x = images(2)
    plain = served.signatures["transfer"](image=tf.constant(x), artist_id=tf.constant([1, 2]))[
        "image"
    ].numpy()
    by_name = served.signatures["transfer_by_name"](
        image=tf.constant(x), artist=tf.constant(["artist_01", "artist_02"])
    )
    encoded = served.signatures["transfer_encoded_by_name"](
        image_bytes=tf.constant([png(i) for i in x]), artist=tf.constant(["artist_01", "artist_02"])
    )
    np.testing.assert_array_equal(by_name["image"], plain)
    np.testing.assert_array_equal(encoded["image"], plain)  # PNG is lossless at the model size
    np.testing.assert_array_equal(tf.io.decode_png(encoded["png_bytes"][1]), plain[1])
    big = np.repeat(np.repeat(x, 2, axis=1), 3, axis=2)  # 64 x 96: resized inside the graph
    resized = served.signatures["transfer"](image=tf.constant(big), artist_id=tf.constant([1, 2]))[
        "image"
    ]
    assert resized.shape == (2, 32, 32, 3)


@pytest.mark.parametrize(
    "signature, inputs, message",
    [
        (
            "transfer",
            dict(image=images(2), artist_id=np.array([0, 4], np.int32)),
            "artist_id out of range",
        ),
        (
            "transfer",
            dict(image=images(1), artist_id=np.array([-1], np.int32)),
            "artist_id out of range",
        ),
        (
            "transfer_by_name",
            dict(image=images(1), artist=np.array([b"nobody"])),
            "unknown artist name",
        ),
        (
            "transfer_encoded",
            dict(image_bytes=np.array([b"not an image"]), artist_id=np.array([0], np.int32)),
            "not a PNG, JPEG, GIF or BMP image",
        ),
    ],
)
def test_bad_input_fails_inside_the_graph(served, signature, inputs, message):
    with pytest.raises(tf.errors.InvalidArgumentError, match=message):
        served.signatures[signature](**{k: tf.constant(v) for k, v in inputs.items()})


def png_header_claiming(width: int, height: int) -> bytes:
    """A tiny PNG whose IHDR claims width x height RGB pixels, with one short IDAT (a decompression bomb's header)."""

    def chunk(kind, data):
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
        + chunk(b"IDAT", zlib.compress(b"\0" * 4096))
        + chunk(b"IEND", b"")
    )


def peak_rss_mb():
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmHWM:")) / 1024


def test_saved_model_refuses_a_30000_square_png_header_before_decoding(served):
    """Behind the real TF Serving no header check runs before the graph: the SavedModel itself must refuse a 4 KB
    file that claims 30000 x 30000 pixels (2.7 GB decoded), fast and without allocating the image."""
    bomb = png_header_claiming(30000, 30000)
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")  # resets the peak RSS
    before, start = peak_rss_mb(), time.perf_counter()
    with pytest.raises(
        tf.errors.InvalidArgumentError, match="image header claims.*30000.*30000.*over the limit"
    ):
        served.signatures["transfer_encoded"](
            image_bytes=tf.constant([png(images(1)[0]), bomb]),
            artist_id=tf.constant([0, 1], tf.int32),
        )
    assert time.perf_counter() - start < 5.0
    assert peak_rss_mb() - before < 200


@pytest.mark.parametrize("image_format", ["JPEG", "GIF", "BMP", "PNG"])
def test_saved_model_reads_the_size_of_every_format_from_its_header(served, image_format, tmp_path):
    """Small images of every format still decode through the header check, and the header check reads their size
    exactly as the local server's (image_headers.image_size): a 5000 x 4000 image (20 MP) is refused by both."""
    from PIL import Image

    from tf_gadn.serving.image_headers import MAX_IMAGE_PIXELS, graph_image_size, image_size

    for size in ((40, 24), (5000, 4000)):
        path = tmp_path / f"x.{image_format.lower()}"
        Image.new("RGB", size, (200, 10, 10)).save(path, image_format)
        data = path.read_bytes()
        assert (
            [float(v) for v in graph_image_size(tf.constant(data))]
            == list(image_size(data))
            == list(size)
        )
        call = lambda data=data: served.signatures["transfer_encoded"](  # noqa: E731
            image_bytes=tf.constant([data]), artist_id=tf.constant([0], tf.int32)
        )
        if size[0] * size[1] <= MAX_IMAGE_PIXELS:
            assert call()["image"].shape == (1, 32, 32, 3)
        else:
            with pytest.raises(tf.errors.InvalidArgumentError, match="over the limit"):
                call()


def test_versions_are_all_digit_folders_and_never_overwritten(tiny_gadn_run, tmp_path):
    """(tests/test_tflite.py exports into such a folder and checks the new version is 4 and no temp dir is left)"""
    base = tmp_path / "gadn"
    for name in ("1", "3", "tflite", ".tmp-9-x"):
        (base / name).mkdir(parents=True)
    assert (
        export.next_version(str(base)) == 4
    )  # only all-digit names are versions, as in TF Serving
    with pytest.raises(FileExistsError):
        export.export(str(tiny_gadn_run), str(tmp_path), "gadn", version=3)
    with pytest.raises(ValueError, match="unknown --tflite mode"):
        export.export(str(tiny_gadn_run), str(tmp_path), "gadn", tflite_modes=["int4"])
    assert sorted(os.listdir(base)) == [".tmp-9-x", "1", "3", "tflite"]


def test_export_is_readable_by_others_and_clears_killed_exports(tiny_gadn_run, tmp_path):
    """Version folders were created 0700 (tempfile.mkdtemp), so a server running as another user got "Permission
    denied"; under the usual umask 022 they are now 0755 with every file readable. Temp folders left by killed
    exports (a dead pid, or the older `.tmp-<v>-<random>` names) are removed at start-up; a live export's stays."""
    base = tmp_path / "gadn"
    live = f"{export.TEMP_PREFIX}8-{os.getpid()}-abcd1234"
    for name in (".tmp-9-x", f"{export.TEMP_PREFIX}7-999999999-deadbeef", live):
        (base / name / "variables").mkdir(parents=True)
    previous = os.umask(0o022)
    try:
        path = export.export(str(tiny_gadn_run), str(tmp_path), "gadn")
    finally:
        os.umask(previous)
    assert sorted(os.listdir(base)) == [live, "1"]
    assert os.stat(path).st_mode & 0o777 == 0o755
    for folder, dirs, files in os.walk(path):
        assert all(os.stat(os.path.join(folder, d)).st_mode & 0o005 == 0o005 for d in dirs)
        assert all(os.stat(os.path.join(folder, f)).st_mode & 0o004 for f in files)


def test_reference_image_sets_reach_the_core_in_model_space(keras_nets, tiny_gadn_run):
    """The IMAGES input kind (style-space transfer_by_reference) decodes [B, R] encoded images to [B, R, S, S, 3]."""
    config, artists, nets = keras_nets
    module = export.signatures_for(config, artists, nets, str(tiny_gadn_run))
    sets = images(6).reshape(2, 3, 32, 32, 3)
    core = lambda reference_images: {"mean_pixel": tf.reduce_mean(reference_images, axis=[2, 3, 4])}  # noqa: E731
    encoded = module.wire_function(core, {"reference_images": export.IMAGES}, encoded=True)
    got = encoded(tf.constant([[png(i) for i in row] for row in sets]))["mean_pixel"].numpy()
    np.testing.assert_allclose(
        got, sets.astype(np.float32).mean(axis=(2, 3, 4)) / 127.5 - 1.0, atol=1e-4
    )
    plain = module.wire_function(core, {"reference_images": export.IMAGES})
    np.testing.assert_allclose(plain(tf.constant(sets))["mean_pixel"], got, atol=1e-5)


@pytest.fixture(scope="module")
def style_space_run(tmp_path_factory):
    """A style-space model_dir with checkpointed *initial* weights and style statistics: export only needs the
    networks and files a trained run has, and parity holds for any weights (training it would cost ~40 s)."""
    from tf_gadn.style_space import networks as style_space
    from tf_gadn.style_space.common import STYLE_STATS

    model_dir = tmp_path_factory.mktemp("runs") / "style_space"
    config = tiny_config("style_space_tiny", model_dir=str(model_dir))
    artists = [{"id": a, "name": f"artist_{a:02d}", "count": 4, "test_count": 0} for a in range(3)]
    checkpoints.save_run_info(str(model_dir), config, artists)
    nets = style_space.build_networks(
        config, 3, ("style_encoder", "representative_styles", "content_encoder", "generator")
    )
    checkpoint = checkpoints.stage_checkpoint(tf.Variable(7, dtype=tf.int64), nets)
    tf.train.CheckpointManager(checkpoint, str(model_dir / "cond_gan" / "ckpt"), 1).save()
    (model_dir / "style_encoder").mkdir()
    rng = np.random.default_rng(0)
    np.savez(
        model_dir / "style_encoder" / STYLE_STATS,
        mean=rng.standard_normal(4).astype(np.float32),
        std=rng.uniform(0.5, 2.0, 4).astype(np.float32),
        count=12,
    )
    return model_dir


def test_style_space_export_matches_its_style_space(style_space_run, tmp_path):
    from tf_gadn.data import color
    from tf_gadn.style_space.common import load_style_space

    served = tf.saved_model.load(export.export(str(style_space_run), str(tmp_path)))
    assert SIGNATURES | {
        "encode_style",
        "encode_style_encoded",
        "transfer_by_reference",
        "transfer_by_reference_encoded",
    } <= set(served.signatures)
    space = load_style_space(str(style_space_run))
    x = images(4, seed=5)
    lab = color.to_model_space(tf.constant(x, tf.float32) / 127.5 - 1.0, "lab").numpy()
    u, v = space.style(lab), space.content(lab)
    np.testing.assert_allclose(
        served.signatures["encode_style"](image=tf.constant(x))["style"], u, atol=1e-4
    )
    np.testing.assert_allclose(
        served.signatures["encode_content"](image=tf.constant(x))["content_mean"], v, atol=1e-4
    )
    # x[0], x[1] drawn in the mean style of the references x[2:4] (both rows): G(mean u, v(x), 0)
    refs = np.stack([x[2:4], x[2:4]])
    expected = space.generate(np.repeat(u[2:4].mean(0, keepdims=True), 2, axis=0), v[:2])
    expected = np.round((color.to_rgb_m11(tf.constant(expected), "lab").numpy() + 1.0) * 127.5)
    by_reference = served.signatures["transfer_by_reference_encoded"](
        image_bytes=tf.constant([png(i) for i in x[:2]]),
        reference_images_bytes=tf.constant([[png(i) for i in row] for row in refs]),
    )["image"].numpy()
    assert np.abs(by_reference.astype(int) - expected).max() <= 1
    transferred = served.signatures["transfer_by_name"](
        image=tf.constant(x[:1]), artist=tf.constant(["artist_02"])
    )
    assert transferred["image"].shape == (1, 32, 32, 3)
