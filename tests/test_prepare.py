"""`prepare`: a user's folder or CSV of illustrations -> the TFRecord data set training reads (GADN §4 "Dataset")."""

import json
import os

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from tf_gadn.data import make_dataset, prepare, records, synthetic

# artist -> number of good images; artist_c falls below MIN_IMAGES and is dropped
COUNTS = {"artist_a": 14, "artist_b": 12, "artist_c": 4}
MIN_IMAGES = 11
SOURCE_SIZE, IMAGE_SIZE = 48, 32


def _write_collection(root):
    """One sub-folder per artist: PNG and JPEG portraits (some not square), plus a truncated JPEG, a text file named
    .png and a notes file. Returns the paths of the good images."""
    good = []
    for artist_index, (artist, count) in enumerate(sorted(COUNTS.items())):
        os.makedirs(root / artist)
        for k in range(count):
            rng = np.random.default_rng([artist_index, k])
            style = synthetic.artist_style(1, artist_index)
            image = synthetic.render(synthetic.sample_content(rng), style, SOURCE_SIZE)
            if k % 3 == 0:
                image = image[:, 4:-4]  # 48 x 40: the centre crop must square it
            path = root / artist / f"{k:02d}.{'png' if k % 2 else 'jpg'}"
            Image.fromarray(image).save(path)
            good.append(str(path))
    jpeg = (root / "artist_a" / "00.jpg").read_bytes()
    (root / "artist_a" / "truncated.jpg").write_bytes(jpeg[: len(jpeg) // 2])
    (root / "artist_b" / "fake.png").write_text("this is not an image")
    (root / "artist_b" / "notes.txt").write_text("drawn in 2019")
    return sorted(good)


def _read_split(data_dir, split):
    """[(artist_id, artist name, source path, decoded uint8 image)] of one split, in file order."""
    rows = []
    for raw in tf.data.TFRecordDataset(records.shard_paths(str(data_dir), split)):
        example = records.parse_example(raw)
        rows.append(
            (
                int(example["artist_id"]),
                example["artist"].numpy().decode(),
                example["path"].numpy().decode(),
                tf.io.decode_png(example["image"]).numpy(),
            )
        )
    return rows


@pytest.fixture(scope="module")
def collection(tmp_path_factory):
    root = tmp_path_factory.mktemp("collection") / "art"
    return root, _write_collection(root)


@pytest.fixture(scope="module")
def prepared(collection, tmp_path_factory):
    root, good = collection
    out = tmp_path_factory.mktemp("prepared") / "data"
    report = prepare.prepare(
        str(out),
        input_dir=str(root),
        image_size=IMAGE_SIZE,
        min_images=MIN_IMAGES,
        test_split=True,
        num_shards=3,
    )
    return out, report


def test_folder_round_trip_counts_ids_and_split(collection, prepared):
    root, good = collection
    out, report = prepared
    # ids 0..N-1 by sorted name; max(10%, 10) = 10 held out per artist; artist_c (4 images) dropped
    assert records.read_artists(str(out)) == [
        {"id": 0, "name": "artist_a", "count": 4, "test_count": 10},
        {"id": 1, "name": "artist_b", "count": 2, "test_count": 10},
    ]
    train, test = _read_split(out, "train"), _read_split(out, "test")
    assert len(train) == 6 and len(test) == 20
    assert all(
        (artist_id, name) in {(0, "artist_a"), (1, "artist_b")}
        for artist_id, name, _, _ in train + test
    )
    train_paths, test_paths = {r[2] for r in train}, {r[2] for r in test}
    assert not train_paths & test_paths
    assert train_paths | test_paths == {p for p in good if "artist_c" not in p}
    assert all(r[3].shape == (IMAGE_SIZE, IMAGE_SIZE, 3) for r in train + test)
    # a stored image is the source's centre crop at IMAGE_SIZE, losslessly (PNG) stored
    path, image = next((r[2], r[3]) for r in train + test if r[2].endswith("01.png"))
    np.testing.assert_array_equal(
        image, prepare.faces.center_crop(np.asarray(Image.open(path)), IMAGE_SIZE)
    )
    assert {entry["name"]: entry["images"] for entry in report["artists_dropped"]} == {
        "artist_c": 4
    }
    assert (
        report["train_images"] == 6 and report["test_images"] == 20 and report["artists_kept"] == 2
    )


def test_bad_files_are_skipped_and_reported(prepared):
    out, report = prepared
    assert report["skipped"] == {
        prepare.CORRUPT: 1,
        prepare.NOT_AN_IMAGE: 1,
        prepare.NOT_IMAGE_EXTENSION: 1,
    }
    reasons = {
        os.path.basename(entry["path"]): entry["reason"] for entry in report["skipped_files"]
    }
    assert reasons == {
        "truncated.jpg": prepare.CORRUPT,
        "fake.png": prepare.NOT_AN_IMAGE,
        "notes.txt": prepare.NOT_IMAGE_EXTENSION,
    }
    assert report["images_read"] == sum(COUNTS.values())
    assert json.loads((out / prepare.REPORT_FILE).read_text()) == report
    # nothing of the run's scaffolding is left: no staging file, no .partial directory
    assert not (out / prepare._STAGING_FILE).exists() and not os.path.exists(str(out) + ".partial")
    assert "truncated.jpg" in prepare.format_report(report)


def test_output_feeds_the_input_pipeline(prepared):
    out, _ = prepared
    batch = next(
        iter(
            make_dataset(
                str(out),
                "train",
                global_batch_size=4,
                image_size=IMAGE_SIZE,
                distinct_other_artist=True,
            )
        )
    )
    assert batch["image"].shape == (4, IMAGE_SIZE, IMAGE_SIZE, 3)
    assert (
        -1.0 <= float(tf.reduce_min(batch["image"])) < float(tf.reduce_max(batch["image"])) <= 1.0
    )
    assert set(batch["artist"].numpy()) <= {0, 1} and np.all(
        batch["other_artist"] != batch["artist"]
    )
    test = make_dataset(
        str(out), "test", global_batch_size=8, shuffle=False, repeat=False, drop_remainder=False
    )
    assert sum(int(b["artist"].shape[0]) for b in test) == 20


def test_csv_and_tsv_listings_give_the_same_data_set(collection, prepared, tmp_path, capsys):
    root, good = collection
    kept = [p for p in good if "artist_c" not in p]
    # relative paths resolve against the listing's folder
    rows = [(os.path.relpath(p, tmp_path), p.split(os.sep)[-2]) for p in kept]
    (tmp_path / "listing.csv").write_text(
        "path,artist\n"
        + "".join(f"{p},{a}\n" for p, a in rows)
        + f"{rows[0][0]},{rows[0][1]}\nart/artist_a/gone.png,artist_a\n"
    )
    (tmp_path / "listing.tsv").write_text("".join(f"{p}\t{a}\n" for p, a in rows))
    from_folder = sorted(
        r[:3] for split in ("train", "test") for r in _read_split(prepared[0], split)
    )
    for listing in ("listing.csv", "listing.tsv"):
        out = tmp_path / listing.replace(".", "_")
        report = prepare.prepare(
            str(out),
            input_csv=str(tmp_path / listing),
            image_size=IMAGE_SIZE,
            min_images=MIN_IMAGES,
            test_split=True,
            num_shards=2,
            progress=True,
        )
        assert (
            sorted(r[:3] for split in ("train", "test") for r in _read_split(out, split))
            == from_folder
        )
        expected = {prepare.DUPLICATE: 1, prepare.MISSING: 1} if listing.endswith("csv") else {}
        assert report["skipped"] == expected
    assert "26/26 files" in capsys.readouterr().err  # the progress bar reached the end


def test_bad_listing_row_is_a_clear_error(tmp_path):
    (tmp_path / "bad.csv").write_text("a.png,artist_a\nb.png\n")
    with pytest.raises(ValueError, match=r"bad.csv:2"):
        prepare.prepare(str(tmp_path / "out"), input_csv=str(tmp_path / "bad.csv"))


def test_default_min_images_is_50_and_a_failed_run_leaves_nothing(collection, tmp_path):
    root, _ = collection
    out = tmp_path / "data"
    with pytest.raises(ValueError, match="--min_images=50"):
        prepare.prepare(str(out), input_dir=str(root), image_size=IMAGE_SIZE)
    assert not out.exists() and not os.path.exists(str(out) + ".partial")
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    with pytest.raises(FileExistsError, match="--overwrite"):
        prepare.prepare(str(out), input_dir=str(root), image_size=IMAGE_SIZE, min_images=1)
    assert os.listdir(out) == ["keep.txt"]


def test_split_rule_is_max_of_ten_percent_and_ten():
    staged = [prepare.Source(f"big/{k:03d}.png", "big") for k in range(150)]
    staged += [prepare.Source(f"small/{k:02d}.png", "small") for k in range(30)]
    held_out = prepare._choose_test(staged, {"big": 0, "small": 1}, seed=1)
    assert sum(staged[i].artist == "big" for i in held_out) == 15
    assert sum(staged[i].artist == "small" for i in held_out) == 10
    # the choice depends on the seed and the files, not on the order they were processed in
    reordered = staged[::-1]
    again = prepare._choose_test(reordered, {"big": 0, "small": 1}, seed=1)
    assert {reordered[i].path for i in again} == {staged[i].path for i in held_out}
    other = prepare._choose_test(staged, {"big": 0, "small": 1}, seed=2)
    assert other != held_out


def test_oversized_images_are_skipped(tmp_path):
    (tmp_path / "in" / "artist").mkdir(parents=True)
    Image.new("RGB", (48, 48)).save(tmp_path / "in" / "artist" / "big.png")
    Image.new("RGB", (20, 20), (200, 10, 10)).save(tmp_path / "in" / "artist" / "small.png")
    report = prepare.prepare(
        str(tmp_path / "out"),
        input_dir=str(tmp_path / "in"),
        image_size=16,
        min_images=1,
        max_pixels=1000,
    )
    assert report["skipped"] == {prepare.TOO_LARGE: 1} and report["train_images"] == 1
    assert "48x48" in report["skipped_files"][0]["detail"]


def test_detect_faces_crops_found_faces_and_reports_the_rest(tmp_path):
    folder = tmp_path / "in" / "artist"
    folder.mkdir(parents=True)
    for seed, turn in ((2, 15), (4, 0)):  # portraits AnimeFace finds (tests/test_faces.py)
        content = synthetic.sample_content(np.random.default_rng(seed))
        portrait = Image.fromarray(synthetic.render(content, synthetic.artist_style(1, seed), 256))
        scene = Image.new("RGB", (400, 360), (90, 120, 90))
        scene.paste(portrait.rotate(turn, expand=True, fillcolor=(90, 120, 90)), (60, 30))
        scene.save(folder / f"scene_{seed}.png")
    noise = np.random.default_rng(0).integers(0, 256, (200, 200, 3), dtype=np.uint8)
    Image.fromarray(noise).save(folder / "noise.jpg")
    out = tmp_path / "out"
    report = prepare.prepare(
        str(out), input_dir=str(tmp_path / "in"), image_size=64, min_images=1, detect_faces=True
    )
    assert report["faces_found"] == 2 and report["images_read"] == 3
    assert report["skipped"] == {prepare.NO_FACE: 1}
    assert report["skipped_files"][0]["path"].endswith("noise.jpg")
    assert [r[3].shape for r in _read_split(out, "train")] == [(64, 64, 3)] * 2


def test_worker_processes_write_the_same_shards(collection, prepared, tmp_path):
    root, _ = collection
    out = tmp_path / "parallel"
    prepare.prepare(
        str(out),
        input_dir=str(root),
        image_size=IMAGE_SIZE,
        min_images=MIN_IMAGES,
        test_split=True,
        num_shards=3,
        num_workers=2,
    )
    for split in ("train", "test"):
        for mine, reference in zip(
            _read_split(out, split), _read_split(prepared[0], split), strict=True
        ):
            assert mine[:3] == reference[:3]
            np.testing.assert_array_equal(mine[3], reference[3])
