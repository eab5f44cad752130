"""Training under hostile conditions (issue 10, items 3, 5, 7 and the training part of 10): a rerun with another data
set must not rewrite a finished run, a diverging run must never leave a non-finite checkpoint behind nor call one
good, a damaged newest checkpoint must fall back to an older one instead of stopping with a traceback, and what a
killed save leaves behind must be cleaned up. Each test reproduces the failure the old code showed."""

import os
import re
import shutil
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf
from conftest import tiny_config as base_tiny_config

from tf_gadn import train
from tf_gadn.data import records
from tf_gadn.training import checkpoints, loop
from tf_gadn.training.config import RUN_SETTINGS, Config

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# The identity fields of configs/test/gadn_tiny.flags, so that a CLI rerun with that flagfile differs only by data.
TINY = dict(
    sample_every=0, stage="gadn_stage1", stage1_steps=4
)  # configs/test/gadn_tiny.flags, stage 1 only
STAGE1 = "gadn_stage1"


def tiny_config(data_dir, model_dir, **changes) -> Config:
    return base_tiny_config(
        "gadn_tiny", data_dir=str(data_dir), model_dir=str(model_dir), **{**TINY, **changes}
    )


def ckpt_dir(model_dir) -> str:
    return os.path.join(str(model_dir), STAGE1, "ckpt")


def float_tensors(path: str) -> dict[str, np.ndarray]:
    """Every float tensor of a checkpoint: network weights and optimizer slots."""
    reader = tf.train.load_checkpoint(path)
    return {
        name: reader.get_tensor(name)
        for name, dtype in reader.get_variable_to_dtype_map().items()
        if dtype.is_floating
    }


def all_finite(path: str) -> bool:
    return all(np.isfinite(value).all() for value in float_tensors(path).values())


def read_bytes(path) -> bytes:
    with open(path, "rb") as f:
        return f.read()


@pytest.fixture(scope="module")
def finished_run(tiny_dataset, tmp_path_factory):
    """Stage 1 trained to its end (4 steps) through train.run: config.json, artists.json, ckpt-2, ckpt-4, DONE."""
    model_dir = tmp_path_factory.mktemp("hostile") / "finished"
    train.run(tiny_config(tiny_dataset, model_dir))
    assert sorted(checkpoints.checkpoint_candidates(ckpt_dir(model_dir))) == [
        os.path.join(ckpt_dir(model_dir), name) for name in ("ckpt-2", "ckpt-4")
    ]
    return model_dir


@pytest.fixture
def run_copy(finished_run, tmp_path):
    """A private copy of the finished run that a test may damage."""
    return shutil.copytree(finished_run, tmp_path / "run")


def _dataset(tmp_path_factory, name, num_artists, images_per_artist):
    from tf_gadn.data import synthetic

    out = tmp_path_factory.mktemp("data") / name
    synthetic.generate_dataset(
        str(out),
        num_artists=num_artists,
        images_per_artist=images_per_artist,
        image_size=32,
        seed=7,
        test_split=False,
        num_shards=1,
        progress=False,
    )
    return out


@pytest.fixture(scope="module")
def three_artists(tmp_path_factory):
    return _dataset(tmp_path_factory, "three_artists", 3, 8)


@pytest.fixture(scope="module")
def more_images(tmp_path_factory):
    """Same four artists as tiny_dataset, more images each: the networks fit, the data set differs."""
    return _dataset(tmp_path_factory, "more_images", 4, 20)


# ---- item 3: a run directory holds one model ------------------------------------------------------------------------


def test_cli_rerun_with_another_data_set_is_refused_and_the_run_is_untouched(
    run_copy, three_artists
):
    """The issue's command: the tiny flagfile with a 3-artist data set into a finished 4-artist run. It used to print
    'already complete' and exit 0 after rewriting config.json and artists.json (so export then failed)."""
    before = {name: read_bytes(run_copy / name) for name in ("config.json", "artists.json")}
    args = [
        "--flagfile=configs/test/gadn_tiny.flags",
        f"--data_dir={three_artists}",
        f"--model_dir={run_copy}",
    ]
    result = subprocess.run(
        [sys.executable, "-m", "tf_gadn.train", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 1, result.stderr[-2000:]
    assert (
        "error:" in result.stderr
        and "--overwrite_config" in result.stderr
        and "Traceback" not in result.stderr
    )
    assert "data set: the run has 4 artists" in result.stderr and "3 artists" in result.stderr
    assert "image_size" not in result.stderr  # only the data set differs from the flagfile's model
    assert {name: read_bytes(run_copy / name) for name in before} == before
    assert not os.path.exists(run_copy / "c2_pretrain")  # nothing was trained either


def test_overwrite_config_trains_into_the_run_anyway(run_copy, more_images):
    """--overwrite_config is the way to continue a run on a changed data set; the run's record follows the change."""
    config = tiny_config(more_images, run_copy, stage1_steps=6)
    with pytest.raises(checkpoints.RunMismatchError, match="data set"):
        train.run(config)
    train.run(config.replace(overwrite_config=True))
    assert records.read_artists(str(run_copy)) == records.read_artists(str(more_images))
    assert checkpoints.latest(str(run_copy), STAGE1).endswith("ckpt-6")


def test_only_run_settings_may_change_between_runs(tmp_path, tiny_dataset):
    """Steps, learning rates, logging, strategy and the data set's path may change on a rerun (continuing, or
    recovering from a non-finite stop); a field that shapes the networks or the objective may not."""
    assert RUN_SETTINGS <= {f for f in Config.__dataclass_fields__}
    artists = records.read_artists(str(tiny_dataset))
    config = tiny_config(tiny_dataset, tmp_path)
    checkpoints.save_run_info(str(tmp_path), config, artists)
    checkpoints.check_run_dir(
        str(tmp_path),
        config.replace(
            stage1_steps=400,
            stage1_lr=1e-6,
            log_every=1,
            checkpoint_every=7,
            strategy="mirrored",
            stage="all",
            data_dir="/elsewhere/same_data",
        ),
        artists,
    )
    for change in (
        dict(content_dim=16),
        dict(lambda_c1=0.5),
        dict(stage1_batch_size=8),
        dict(seed=2),
    ):
        with pytest.raises(checkpoints.RunMismatchError, match=next(iter(change))):
            checkpoints.check_run_dir(str(tmp_path), config.replace(**change), artists)
    recounted = [dict(a, count=a["count"] + 1) if a["id"] == 0 else a for a in artists]
    with pytest.raises(checkpoints.RunMismatchError, match="data set"):
        checkpoints.check_run_dir(str(tmp_path), config, recounted)


# ---- item 5: weights are checked before every save ------------------------------------------------------------------


def test_finite_check_names_the_non_finite_variables():
    """The check looks at the weights themselves, so NaN weights are caught even while the logged losses are finite."""
    import keras

    layer = keras.layers.Dense(3)
    layer.build((None, 2))
    optimizer = keras.optimizers.Adam()
    optimizer.build(layer.trainable_variables)
    check = checkpoints.FiniteCheck({"dense": layer}, {"dense": optimizer})
    assert check.failures() == ""
    layer.kernel.assign(np.full((2, 3), np.nan, np.float32))
    optimizer.variables[-1].assign(np.full(optimizer.variables[-1].shape, np.inf, np.float32))
    assert check.failures() == "dense: 1 of 2 tensors, dense optimizer: 1 of 5 tensors"


def _train_until_non_finite(config: Config) -> str | None:
    """Trains until the guard stops the run; checks that no non-finite checkpoint was left behind, and returns the
    checkpoint the error calls good (None for 'none') after checking that it loads finite."""
    artists = records.read_artists(config.data_dir)
    with pytest.raises(loop.NonFiniteLossError) as err:
        loop.train_stage(config, STAGE1, tf.distribute.get_strategy(), artists, progress=False)
    saved = checkpoints.checkpoint_candidates(ckpt_dir(config.model_dir))
    assert all(all_finite(path) for path in saved), (str(err.value), saved)
    named = re.search(r"Last good checkpoint: (\S+)\. ", str(err.value)).group(1)
    if named == "none":
        assert not saved
        return None
    assert named == saved[0] and all_finite(named), str(err.value)
    return named


def test_huge_learning_rate_never_saves_non_finite_weights(tiny_dataset, tmp_path):
    """The issue's `--stage1_lr=1e3 --stage1_style_lr=1e3 --checkpoint_every=1` used to save checkpoints full of
    NaN/Inf (the update of step k breaks the weights while step k's loss is still finite) and then name one of them
    'last good', so a rerun with a sane rate failed again at once. Now nothing non-finite is saved, the error names a
    checkpoint that loads finite, and a rerun with a sane rate continues from it (the old code also restored the
    checkpoint's learning rate over the configured one, so a changed rate had no effect on a resumed run)."""
    huge = dict(stage1_lr=1e3, stage1_style_lr=1e3, checkpoint_every=1)
    assert (
        _train_until_non_finite(
            tiny_config(tiny_dataset, tmp_path / "from_scratch", stage1_steps=8, **huge)
        )
        is None
    )  # the first update already puts Inf into Adam's slots: nothing good to save
    config = tiny_config(tiny_dataset, tmp_path / "resumed", stage1_steps=2, checkpoint_every=1)
    artists = records.read_artists(str(tiny_dataset))
    loop.train_stage(config, STAGE1, tf.distribute.get_strategy(), artists, progress=False)
    named = _train_until_non_finite(config.replace(stage1_steps=8, **huge))
    assert named.endswith("ckpt-2")
    loop.train_stage(
        config.replace(stage1_steps=4),
        STAGE1,
        tf.distribute.get_strategy(),
        artists,
        progress=False,
    )
    assert checkpoints.latest(config.model_dir, STAGE1).endswith("ckpt-4")
    assert all_finite(checkpoints.latest(config.model_dir, STAGE1))


# ---- item 7: a damaged newest checkpoint falls back to the newest one that restores ---------------------------------


def _truncate_data(prefix):
    with open(prefix + ".data-00000-of-00001", "r+b") as f:
        f.truncate(1000)


def _empty_index(prefix):
    open(prefix + ".index", "w").close()


@pytest.mark.parametrize(
    "damage", [_truncate_data, _empty_index], ids=["truncated_data", "empty_index"]
)
def test_damaged_newest_checkpoint_falls_back_and_training_continues(
    run_copy, tiny_dataset, capsys, damage
):
    """A truncated .data file used to stop the run with IndexError, a 0-byte .index with a raw OpError. Now the run
    warns, keeps the damaged checkpoint in corrupt/, resumes from ckpt-2 and recomputes ckpt-4 bit for bit."""
    newest = os.path.join(ckpt_dir(run_copy), "ckpt-4")
    original = float_tensors(newest)
    damage(newest)
    train.run(tiny_config(tiny_dataset, run_copy, stage1_steps=6))
    err = capsys.readouterr().err
    assert f"warning: checkpoint {newest} " in err and "corrupt" in err
    assert os.path.exists(os.path.join(ckpt_dir(run_copy), "corrupt", "ckpt-4", "ckpt-4.index"))
    assert checkpoints.latest(str(run_copy), STAGE1).endswith("ckpt-6")
    redone = float_tensors(newest)
    assert redone.keys() == original.keys()
    for name in original:
        np.testing.assert_array_equal(redone[name], original[name], err_msg=name)


def test_no_checkpoint_restores_is_a_clear_error(run_copy, tiny_dataset):
    """With every checkpoint damaged there is nothing to fall back to: a CheckpointError naming each one (which
    train.main prints as `error: ...`), not a traceback from the restore."""
    for name in ("ckpt-2", "ckpt-4"):
        _empty_index(os.path.join(ckpt_dir(run_copy), name))
    with pytest.raises(
        checkpoints.CheckpointError, match=r"ckpt-4 cannot be read.*ckpt-2 cannot be read"
    ):
        train.run(tiny_config(tiny_dataset, run_copy, stage1_steps=6))


def test_export_and_evaluation_restore_past_a_missing_index(run_copy, capsys):
    """load_trained (export, evaluation) shares the fallback: with the newest .index gone it used to find 'no trained
    stage' (tf.train.latest_checkpoint returns None); now it warns and restores ckpt-2, leaving the files in place."""
    os.remove(os.path.join(ckpt_dir(run_copy), "ckpt-4.index"))
    _, _, networks = checkpoints.load_trained(str(run_copy))
    assert "ckpt-4 cannot be read" in capsys.readouterr().err
    expected = tf.train.load_checkpoint(os.path.join(ckpt_dir(run_copy), "ckpt-2"))
    for index, weight in enumerate(networks["encoder"].weights):
        np.testing.assert_array_equal(
            weight.numpy(),
            expected.get_tensor(f"networks/encoder/w{index:04d}/.ATTRIBUTES/VARIABLE_VALUE"),
        )
    assert os.path.exists(os.path.join(ckpt_dir(run_copy), "ckpt-4.data-00000-of-00001"))


# ---- item 10 (training): leftovers of a killed save -----------------------------------------------------------------


def test_leftovers_of_a_killed_save_are_removed_at_start_up(run_copy, tiny_dataset):
    """A save killed halfway leaves `ckpt-N_temp/` (TF writes the shards there before merging them) and possibly a
    `checkpoint.tmp<uuid>` state file; they used to stay forever. The next start removes them."""
    leftover = os.path.join(ckpt_dir(run_copy), "ckpt-6_temp")
    os.makedirs(leftover)
    for suffix in (".index", ".data-00000-of-00001"):
        with open(os.path.join(leftover, "part-00000-of-00001" + suffix), "wb") as f:
            f.write(b"\0" * 100)
    state_tmp = os.path.join(ckpt_dir(run_copy), "checkpoint.tmp0123abcd")
    open(state_tmp, "w").close()
    loop.train_stage(
        tiny_config(tiny_dataset, run_copy),
        STAGE1,
        tf.distribute.get_strategy(),
        records.read_artists(str(tiny_dataset)),
        progress=False,
    )
    assert not os.path.exists(leftover) and not os.path.exists(state_tmp)
    assert checkpoints.latest(str(run_copy), STAGE1).endswith("ckpt-4")
