"""`prepare` on awkward collections (issue 10, item 8): each test builds the real thing in tmp_path (a FIFO, a socket,
a device link, a folder it cannot list, symbolic links back into the tree, undecodable file names, copied files,
16-bit and other pixel modes) and checks the data set and the report. Each of these once crashed the run, hung it,
or silently gave a wrong data set."""

import contextlib
import ctypes
import json
import os
import socket
import subprocess
import sys
import threading

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from tf_gadn.data import prepare, records


def _picture(path, seed, size=20):
    """A distinct random RGB PNG at `path` (str or bytes)."""
    pixels = np.random.default_rng(seed).integers(0, 256, (size, size, 3), dtype=np.uint8)
    with open(path, "wb") as f:
        Image.fromarray(pixels).save(f, format="PNG")


def _artist(folder, count, seed):
    os.makedirs(folder, exist_ok=True)
    for k in range(count):
        _picture(os.path.join(folder, f"{k:02d}.png"), [seed, k])


def _rows(data_dir, split="train"):
    """[(artist, path, PNG bytes)] of one split."""
    rows = []
    for raw in tf.data.TFRecordDataset(records.shard_paths(str(data_dir), split)):
        example = records.parse_example(raw)
        rows.append(
            (
                example["artist"].numpy().decode(),
                example["path"].numpy().decode(),
                example["image"].numpy(),
            )
        )
    return rows


def _reasons(report):
    """{path relative to the input folder: (reason, detail)} of the report's skipped files."""
    root = report["input"]
    return {
        os.path.relpath(e["path"], root): (e["reason"], e["detail"])
        for e in report["skipped_files"]
    }


@contextlib.contextmanager
def _unblocks_after(fifo, seconds=5.0):
    """Yields a list that gets True if something was still blocked opening `fifo` for reading after `seconds`: the
    watchdog then opens the write end and closes it, so a reader that would hang forever gets EOF and the test fails
    instead of hanging the suite."""
    fired = []

    def release():
        try:
            os.close(
                os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
            )  # ENXIO when nobody is reading: nothing was stuck
            fired.append(True)
        except OSError:
            pass

    timer = threading.Timer(seconds, release)
    timer.start()
    try:
        yield fired
    finally:
        timer.cancel()


@contextlib.contextmanager
def _without_root_file_access():
    """As root, chmod 000 stops nothing: drop CAP_DAC_OVERRIDE and CAP_DAC_READ_SEARCH from this thread's effective
    capabilities (Linux capabilities are per thread; the folder listing runs here), and restore them after. A normal
    user needs nothing."""
    if os.geteuid() != 0:
        yield
        return
    libc = ctypes.CDLL(None, use_errno=True)
    header = (ctypes.c_uint32 * 2)(0x20080522, 0)  # _LINUX_CAPABILITY_VERSION_3, calling thread
    saved = (ctypes.c_uint32 * 6)()  # 2 x (effective, permitted, inheritable)
    if libc.capget(header, saved) != 0:
        pytest.skip(
            f"running as root and capget failed (errno {ctypes.get_errno()}): cannot make a folder unreadable"
        )
    reduced = (ctypes.c_uint32 * 6)(*saved)
    reduced[0] &= ~((1 << 1) | (1 << 2))  # CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH
    if libc.capset(header, reduced) != 0:
        pytest.skip(
            f"running as root and capset failed (errno {ctypes.get_errno()}): cannot make a folder unreadable"
        )
    try:
        yield
    finally:
        assert libc.capset(header, saved) == 0


def test_undecodable_names_give_a_data_set_with_escaped_names(tmp_path):
    """A folder and file names that are not UTF-8 (here Latin-1 'café' and a 0xff byte) once crashed the run after all
    the work, when the name was written to a record or JSON file (exit 1, no output). Files are opened by their real
    bytes; artists.json, report.json and the records show each undecodable byte as a `\\xNN` escape."""
    root = os.fsencode(tmp_path / "in")
    os.makedirs(os.path.join(root, b"caf\xe9"))
    for k in range(2):
        _picture(os.path.join(root, b"caf\xe9", b"\xff%d.png" % k), [0, k])
    _artist(tmp_path / "in" / "plain", 2, seed=1)
    out = tmp_path / "out"
    # the command line, as the issue ran it: it must finish and print its report
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "tf_gadn.data.prepare",
            f"--input_dir={tmp_path / 'in'}",
            f"--output_dir={out}",
            "--min_images=1",
            "--image_size=16",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "train images: 4" in done.stdout
    assert [a["name"] for a in records.read_artists(str(out))] == ["caf\\xe9", "plain"]
    report = json.loads((out / prepare.REPORT_FILE).read_text(encoding="utf-8"))
    assert report["images_read"] == 4 and report["skipped"] == {}
    paths = sorted(path for _, path, _ in _rows(out))
    assert paths[0].endswith("/caf\\xe9/\\xff0.png") and paths[1].endswith("/caf\\xe9/\\xff1.png")

    # a CSV listing may hold the same bytes: they name the same files
    listing = tmp_path / "in" / "list.csv"
    listing.write_bytes(b"caf\xe9/\xff0.png,caf\xe9\ncaf\xe9/\xff1.png,caf\xe9\n")
    report = prepare.prepare(
        str(tmp_path / "from_csv"), input_csv=str(listing), image_size=16, min_images=1
    )
    assert report["images_read"] == 2 and report["skipped"] == {}
    assert [a["name"] for a in records.read_artists(str(tmp_path / "from_csv"))] == ["caf\\xe9"]


def test_fifo_socket_and_device_are_reported_never_opened(tmp_path, monkeypatch):
    """A FIFO named x.png once hung the run forever (open() waits for a writer). Only regular files are opened, by
    the folder listing and by load_image (which a CSV listing reaches directly); the rest are reported."""
    folder = tmp_path / "in" / "alice"
    _artist(folder, 2, seed=0)
    os.mkfifo(folder / "pipe.png")
    monkeypatch.chdir(folder)  # a socket path must be short: bind relative to the folder
    listener = socket.socket(socket.AF_UNIX)
    listener.bind("sock.png")
    os.symlink("/dev/zero", folder / "zero.png")
    try:
        with _unblocks_after(folder / "pipe.png") as hung:
            report = prepare.prepare(
                str(tmp_path / "out"), input_dir=str(tmp_path / "in"), image_size=16, min_images=1
            )
        assert not hung, "prepare blocked opening the FIFO"
        assert _reasons(report) == {
            "alice/pipe.png": (prepare.NOT_REGULAR, "FIFO"),
            "alice/sock.png": (prepare.NOT_REGULAR, "socket"),
            "alice/zero.png": (prepare.NOT_REGULAR, "character device"),
        }
        assert report["train_images"] == 2
        with (
            _unblocks_after(folder / "pipe.png") as hung,
            pytest.raises(prepare.SkippedImage, match="FIFO"),
        ):
            prepare.load_image(str(folder / "pipe.png"))
        assert not hung, "load_image blocked opening the FIFO"
    finally:
        listener.close()


def test_unreadable_artist_folder_is_reported_and_warned_about(tmp_path, capfd):
    """An artist folder that cannot be listed once vanished from the data set and the report without a word (os.walk
    drops listing errors). It is now a skipped entry with the reason, a dropped artist, and a warning on stderr. The
    folder is really unreadable: mode 000, and as root this thread's capabilities to bypass that are dropped."""
    _artist(tmp_path / "in" / "alice", 2, seed=0)
    locked = tmp_path / "in" / "bob"
    _artist(locked, 2, seed=1)
    locked.chmod(0)
    try:
        with _without_root_file_access():
            report = prepare.prepare(
                str(tmp_path / "out"), input_dir=str(tmp_path / "in"), image_size=16, min_images=1
            )
    finally:
        locked.chmod(0o755)
    assert _reasons(report) == {"bob": (prepare.UNREADABLE_FOLDER, "Permission denied")}
    assert report["artists_dropped"] == [{"name": "bob", "images": 0}]
    assert report["artists_kept"] == 1 and report["train_images"] == 2
    assert "bob" in capfd.readouterr().err.split("warning: skipping")[1]


def test_links_inside_the_tree_list_each_real_file_once(tmp_path):
    """An artist folder that is a symbolic link to the input folder once counted every image twice (under a made-up
    artist). Links are followed, since a collection may link to folders elsewhere, but every real folder and file is
    listed once, real artist folders first; the extra paths are reported."""
    root = tmp_path / "in"
    _artist(root / "alice", 3, seed=0)
    _artist(root / "bob", 3, seed=1)
    _artist(tmp_path / "elsewhere", 2, seed=2)
    os.symlink(root, root / "zed")  # the whole input, again
    os.symlink(root / "bob", root / "alias")  # sorts before bob, but bob is the real folder
    os.symlink(tmp_path / "elsewhere", root / "carol")  # outside the tree: a legitimate artist
    os.symlink(root / "alice", root / "bob" / "again")
    os.symlink(".", root / "bob" / "loop")
    os.symlink("spin.png", root / "bob" / "spin.png")  # a link to itself
    os.link(root / "alice" / "00.png", root / "alice" / "hard.png")
    report = prepare.prepare(
        str(tmp_path / "out"), input_dir=str(root), image_size=16, min_images=1
    )
    assert report["files_listed"] == 8
    assert {a["name"]: a["count"] for a in records.read_artists(str(tmp_path / "out"))} == {
        "alice": 3,
        "bob": 3,
        "carol": 2,
    }
    assert report["artists_dropped"] == []  # the aliases are not artists
    same_as = lambda path: (prepare.LINKED_TWICE, f"same as {root / path}")  # noqa: E731
    assert _reasons(report) == {
        "zed": (prepare.LINKED_TWICE, f"same folder as {root}"),
        "alias": (prepare.LINKED_TWICE, f"same folder as {root / 'bob'}"),
        "bob/again": same_as("alice"),
        "bob/loop": same_as("bob"),
        "alice/hard.png": same_as("alice/00.png"),
        "bob/spin.png": (prepare.UNREADABLE, "Too many levels of symbolic links"),
    }


def test_copies_are_kept_once_and_never_in_both_splits(tmp_path):
    """Files with the same bytes (any names, any artists) were all kept, so a copy could be trained on and tested on.
    They are found by content hash before the split: the first in listing order is kept, the others reported, a copy
    under another artist as a conflict naming the kept file."""
    root = tmp_path / "in"
    _artist(root / "alice", 12, seed=0)
    _artist(root / "bob", 12, seed=1)
    for k in range(6):
        (root / "alice" / f"copy_{k}.png").write_bytes(
            (root / "alice" / f"{k:02d}.png").read_bytes()
        )
    (root / "bob" / "stolen.png").write_bytes((root / "alice" / "03.png").read_bytes())
    out = tmp_path / "out"
    report = prepare.prepare(
        str(out), input_dir=str(root), image_size=16, min_images=11, test_split=True
    )
    assert report["skipped"] == {prepare.SAME_CONTENT: 6, prepare.SAME_CONTENT_OTHER_ARTIST: 1}
    assert _reasons(report)["bob/stolen.png"] == (
        prepare.SAME_CONTENT_OTHER_ARTIST,
        f"same bytes as {root / 'alice' / '03.png'} (artist alice), which is kept",
    )
    assert [(a["name"], a["count"], a["test_count"]) for a in records.read_artists(str(out))] == [
        ("alice", 2, 10),
        ("bob", 2, 10),
    ]
    train, test = _rows(out, "train"), _rows(out, "test")
    images = [png for _, _, png in train + test]
    assert len(images) == len(set(images)) == 24  # every image once: none in both splits
    assert not any("copy_" in path or "stolen" in path for _, path, _ in train + test)


def _save(path, image, **options):
    image.save(path, **options)
    return path


def test_every_pixel_mode_comes_out_as_the_colour_it_shows(tmp_path):
    """16-bit greyscale PNGs (Pillow mode I;16) once came out near-white: Pillow's conversion clips at 255 instead of
    scaling. I;16 and I scale 0..65535 to 0..255 and F 0..1; the other modes with transparency or a different colour
    model are checked too, on real files through load_image (the one loader every file goes through)."""
    palette = Image.new("P", (4, 4), 1)
    palette.putpalette([255, 0, 0, 0, 0, 255])  # index 1: blue, made transparent below
    grey16 = np.full((4, 4), 32768, np.uint16)
    grey16[0, 0] = 0  # the transparent value below
    cases = {
        "I;16": (_save(tmp_path / "grey16.png", Image.fromarray(grey16)), (128, 128, 128)),
        "I;16 transparent": (
            _save(tmp_path / "grey16t.png", Image.fromarray(grey16), transparency=0),
            (128, 128, 128),
        ),
        "I": (
            _save(tmp_path / "grey32.tif", Image.fromarray(grey16.astype(np.int32), "I")),
            (128, 128, 128),
        ),
        "F": (
            _save(tmp_path / "float.tif", Image.fromarray(np.full((4, 4), 0.5, np.float32), "F")),
            (128, 128, 128),
        ),
        "LA": (_save(tmp_path / "la.png", Image.new("LA", (4, 4), (100, 255))), (100, 100, 100)),
        "LA transparent": (
            _save(tmp_path / "la0.png", Image.new("LA", (4, 4), (100, 0))),
            (255, 255, 255),
        ),
        "P transparent": (_save(tmp_path / "p.png", palette, transparency=1), (255, 255, 255)),
        "CMYK": (
            _save(tmp_path / "cmyk.tif", Image.new("CMYK", (4, 4), (0, 255, 255, 0))),
            (255, 0, 0),
        ),
        "RGBA half": (
            _save(tmp_path / "rgba.png", Image.new("RGBA", (4, 4), (0, 0, 0, 128))),
            (127, 127, 127),
        ),
    }
    for mode, (path, colour) in cases.items():
        image = prepare.load_image(str(path))
        pixels = np.asarray(image, dtype=int)
        assert image.mode == "RGB", mode
        np.testing.assert_allclose(
            pixels[1:, 1:], np.broadcast_to(colour, (3, 3, 3)), atol=1, err_msg=mode
        )
    transparent = prepare.load_image(str(cases["I;16 transparent"][0]))
    assert transparent.getpixel((0, 0)) == (255, 255, 255)


def test_16_bit_png_is_mid_grey_in_the_data_set(tmp_path):
    """End to end: a mid-grey 16-bit greyscale PNG is stored mid-grey, not near-white."""
    (tmp_path / "in" / "alice").mkdir(parents=True)
    Image.fromarray(np.full((24, 24), 32768, np.uint16)).save(
        tmp_path / "in" / "alice" / "grey16.png"
    )
    prepare.prepare(
        str(tmp_path / "out"), input_dir=str(tmp_path / "in"), image_size=16, min_images=1
    )
    ((_, _, png),) = _rows(tmp_path / "out")
    np.testing.assert_allclose(tf.io.decode_png(png).numpy(), 128, atol=1)
