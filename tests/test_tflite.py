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
    inputs = {
        "transfer": {
            "image": rng.integers(0, 256, (3, 32, 32, 3)).astype(np.uint8),
            "artist_id": np.array([0, 2, 3], np.int32),
        },
        "generate": {
            "content": 2 * rng.standard_normal((3, 8)).astype(np.float32),
            "style": 2 * rng.standard_normal((3, 8)).astype(np.float32),
        },
    }
    errors = tflite.parity(saved_model, f"{path}/tflite", mode, inputs)
    for name, error in errors.items():
        assert tflite.within_tolerance(error, mode), (name, error, tflite.TOLERANCE[mode])
    meta = json.load(open(f"{path}/tflite/{mode}.json"))
    assert meta["artists"] == ["artist_00", "artist_01", "artist_02", "artist_03"]
    assert meta["signatures"]["transfer"]["inputs"] == [
        {"name": "artist_id", "dtype": "int32", "shape": [1]},
        {"name": "image", "dtype": "uint8", "shape": [1, 32, 32, 3]},
    ]


@pytest.mark.parametrize("mode", tflite.MODES)
def test_signature_keys_and_sidecar_order_match_the_interpreter(exported, mode):
    """Each file's signature is named after its function, and the JSON lists inputs and outputs in the order, with
    the dtypes and shapes, the interpreter reports (an app feeding by position gets them right)."""
    path, _ = exported
    meta = json.load(open(f"{path}/tflite/{mode}.json"))
    for name in ("transfer", "generate"):
        model = tflite.interpreter(f"{path}/tflite/{tflite.file_name(name, mode)}")
        listed = model.get_signature_list()
        assert list(listed) == [name] and meta["signatures"][name]["signature_key"] == name
        runner = model.get_signature_runner(name)
        for kind, details in (
            ("inputs", runner.get_input_details()),
            ("outputs", runner.get_output_details()),
        ):
            recorded = meta["signatures"][name][kind]
            assert [r["name"] for r in recorded] == listed[name][kind]
            for r in recorded:
                assert r["shape"] == details[r["name"]]["shape"].tolist()
                assert r["dtype"] == np.dtype(details[r["name"]]["dtype"]).name


def test_phone_tables_let_generate_and_sample_run_on_the_phone(exported):
    """phone_tables.json + generate.tflite reproduce the SavedModel: an artist's row of the style table is the style
    transfer uses, and sample's recipe (content from the fitted normal) draws through generate alone."""
    path, saved_model = exported
    tables = json.load(open(f"{path}/tflite/{tflite.TABLES_FILE}"))
    assert tables["artists"] == ["artist_00", "artist_01", "artist_02", "artist_03"]
    assert np.array(tables["style_table"]).shape == (4, 8) and np.array(
        tables["content_cholesky"]
    ).shape == (8, 8)
    assert np.array(tables["style_cholesky"]).shape == (8, 8) and len(tables["style_mean"]) == 8
    image = np.random.default_rng(1).integers(0, 256, (1, 32, 32, 3)).astype(np.uint8)
    content = saved_model.signatures["encode_content"](image=tf.constant(image))["content_mean"]
    via_table = saved_model.signatures["generate"](
        content=content, style=tf.constant([tables["style_table"][2]], tf.float32)
    )["image"]
    via_id = saved_model.signatures["transfer"](
        image=tf.constant(image), artist_id=tf.constant([2])
    )["image"]
    assert np.abs(via_table.numpy().astype(int) - via_id.numpy()).max() <= 1
    drawn = tflite.sample_on_phone(
        f"{path}/tflite/{tflite.file_name('generate', 'float32')}", tables, "artist_02", seed=5
    )
    assert drawn.shape == (32, 32, 3) and drawn.dtype == np.uint8


def test_quantised_files_are_smaller(exported):
    path, _ = exported
    sizes = [
        json.load(open(f"{path}/tflite/{mode}.json"))["signatures"]["transfer"]["bytes"]
        for mode in tflite.MODES
    ]
    assert sizes[0] > sizes[1] > sizes[2]  # float32 > float16 > int8 weights


def test_phone_model_rejects_unknown_artist(exported):
    path, _ = exported
    runner = tflite.Runner(f"{path}/tflite/{tflite.file_name('transfer', 'float32')}")
    with pytest.raises(
        RuntimeError, match="out of bounds"
    ):  # no Assert op on the phone, but Gather checks
        runner(image=np.zeros((1, 32, 32, 3), np.uint8), artist_id=np.array([4], np.int32))
