"""TFLite previews: `export --tflite` writes every mode, and each stays within its stated tolerance of the SavedModel
when run by the LiteRT interpreter."""
import json
import os

import numpy as np
import pytest
import tensorflow as tf

from tf_gadn.serving import export, tflite


@pytest.fixture(scope="module")
def exported(tiny_gadn_run, tmp_path_factory):
    """`export --tflite` into a base path that already holds versions 1 and 3 and a stale temp dir."""
    export_dir = tmp_path_factory.mktemp("exports")
    for name in ("1", "3", ".tmp-9-x"):
        (export_dir / "gadn" / name).mkdir(parents=True)
    path = export.export(str(tiny_gadn_run), str(export_dir), "gadn", tflite_modes=tflite.MODES)
    return path, tf.saved_model.load(path)


def test_export_takes_the_next_version_atomically(exported):
    path, _ = exported
    base = os.path.dirname(path)
    assert path == os.path.join(base, "4") and os.path.exists(os.path.join(path, "saved_model.pb"))
    # its own temp dir was renamed into place; the stale one (no live pid in its name) was removed at start-up
    assert sorted(os.listdir(base)) == ["1", "3", "4"]


@pytest.mark.parametrize("mode", tflite.MODES)
def test_parity_with_saved_model(exported, mode):
    path, saved_model = exported
    rng = np.random.default_rng(0)
    inputs = {"transfer": {"image": rng.integers(0, 256, (3, 32, 32, 3)).astype(np.uint8),
                           "artist_id": np.array([0, 2, 3], np.int32)},
              "generate": {"content": 2 * rng.standard_normal((3, 8)).astype(np.float32),
                           "style": 2 * rng.standard_normal((3, 8)).astype(np.float32)}}
    errors = tflite.parity(saved_model, f"{path}/tflite", mode, inputs)
    for name, error in errors.items():
        assert tflite.within_tolerance(error, mode), (name, error, tflite.TOLERANCE[mode])
    meta = json.load(open(f"{path}/tflite/{mode}.json"))
    assert meta["artists"] == ["artist_00", "artist_01", "artist_02", "artist_03"]
    assert meta["signatures"]["transfer"]["inputs"][0] == {"name": "image", "shape": [1, 32, 32, 3], "dtype": "uint8"}


def test_quantised_files_are_smaller(exported):
    path, _ = exported
    sizes = [json.load(open(f"{path}/tflite/{mode}.json"))["signatures"]["transfer"]["bytes"] for mode in tflite.MODES]
    assert sizes[0] > sizes[1] > sizes[2]   # float32 > float16 > int8 weights


def test_phone_model_rejects_unknown_artist(exported):
    path, _ = exported
    runner = tflite.Runner(f"{path}/tflite/{tflite.file_name('transfer', 'float32')}")
    with pytest.raises(RuntimeError, match="out of bounds"):   # no Assert op on the phone, but Gather checks
        runner(image=np.zeros((1, 32, 32, 3), np.uint8), artist_id=np.array([4], np.int32))
