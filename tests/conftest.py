"""Test-session setup: quiet TF logs, and two logical CPU devices so MirroredStrategy tests have 2 replicas
(must happen before any TensorFlow op runs, hence at conftest import)."""

import fcntl
import os
import shutil

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from tf_gadn.training import distribute  # noqa: E402

distribute.split_cpu(2)

import pytest  # noqa: E402


@pytest.fixture(scope="session")
def mirrored_strategy():
    """One MirroredStrategy over the two logical CPUs for the whole session: a second one over the same devices
    reuses its collective instance keys, and TensorFlow keeps the first tensor shape it saw under each key, so a test
    that built its own after another test's all-reduces failed depending on the order the tests ran in."""
    strategy = distribute.make_strategy("mirrored", 2)
    assert strategy.num_replicas_in_sync == 2
    return strategy


def built_once(tmp_path_factory, name: str, build):
    """`build(out)` into a new path `out` (a directory named `name`, which some tests read as a run's name), once per
    test session; returns `out`. Under pytest-xdist every worker is a process with its own session fixtures, and the
    tiny runs cost minutes each: the first worker to need one builds it under a file lock and the others wait for it
    and reuse its directory (read-only by convention, as within one process). A build that fails leaves no DONE
    mark, so the next worker to ask tries again."""
    if "PYTEST_XDIST_WORKER" not in os.environ:
        out = tmp_path_factory.mktemp(name) / name
        build(out)
        return out
    # the run's root, common to its workers
    shared = tmp_path_factory.getbasetemp().parent / "shared"
    shared.mkdir(exist_ok=True)
    out, done = shared / name, shared / f"{name}.DONE"
    with open(shared / f"{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not done.exists():
            shutil.rmtree(out, ignore_errors=True)
            build(out)
            done.touch()
    return out


@pytest.fixture(scope="session")
def tiny_dataset(tmp_path_factory):
    """A real TFRecord data set of synthetic portraits: 4 artists x 16 images at 32 px, no test split."""
    return built_once(
        tmp_path_factory,
        "tiny",
        lambda out: synthetic_set(out, num_artists=4, images_per_artist=16, seed=7, num_shards=2),
    )


def synthetic_set(out, num_artists: int, images_per_artist: int, **options):
    """A real TFRecord data set of synthetic portraits at 32 px, without a test split unless asked; returns `out`."""
    from tf_gadn.data import synthetic

    synthetic.generate_dataset(
        str(out),
        num_artists=num_artists,
        images_per_artist=images_per_artist,
        **{"image_size": 32, "test_split": False, "progress": False, **options},
    )
    return out


REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TEST_CONFIGS = os.path.join(REPO, "configs", "test")


def tiny_config(name: str, **changes):
    """configs/test/<name>.flags parsed by train's own flags into a Config, with `changes` on top: the one definition
    of the tiny models every test trains (data_dir and model_dir come from the test)."""
    from tf_gadn.training.config import Config

    return Config.from_flagfile(os.path.join(TEST_CONFIGS, name + ".flags"), **changes)


@pytest.fixture(scope="session")
def tiny_gadn_run(tiny_dataset, tmp_path_factory):
    """A GADN model_dir with all three stages trained a few steps (for evaluation, export and serving tests)."""
    from tf_gadn import train

    return built_once(
        tmp_path_factory,
        "gadn",
        lambda out: train.run(
            tiny_config("gadn_tiny", data_dir=str(tiny_dataset), model_dir=str(out), stage1_steps=6)
        ),
    )


@pytest.fixture(scope="session")
def tiny_gadn_export(tiny_gadn_run, tmp_path_factory):
    """The tiny GADN run exported as EXPORT_DIR/gadn/1 with every serving signature (export and serving tests)."""
    from tf_gadn.serving import export

    return built_once(
        tmp_path_factory,
        "exports",
        lambda out: export.export(str(tiny_gadn_run), str(out), "gadn"),
    )


@pytest.fixture(scope="session")
def tiny_stargan_run(tiny_dataset, tmp_path_factory):
    """A StarGAN model_dir trained a few steps (export and comparison tests)."""
    from tf_gadn import train

    return built_once(
        tmp_path_factory,
        "stargan",
        lambda out: train.run(
            tiny_config("stargan_tiny", data_dir=str(tiny_dataset), model_dir=str(out))
        ),
    )


@pytest.fixture(scope="session")
def tiny_style_space_run(tiny_dataset, tmp_path_factory):
    """A style-space model_dir trained by the train CLI on the tiny flagfile, all three stages (exploration and
    evaluation tests, and the stage contract's later stages inherit from it)."""
    import subprocess
    import sys

    def build(model_dir):
        result = subprocess.run(
            [
                sys.executable,
                "-m",
                "tf_gadn.train",
                "--flagfile=configs/test/style_space_tiny.flags",
                f"--data_dir={tiny_dataset}",
                f"--model_dir={model_dir}",
                "--eval_every=4",
            ],
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=1200,
            env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"},
        )
        assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]

    return built_once(tmp_path_factory, "style_space", build)
