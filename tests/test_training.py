"""The training loop as a user relies on it: exact resume, same update on 1 or 2 replicas, a clear stop on NaN that
keeps the last good checkpoint, the flagfile CLI chaining all three GADN stages, and a 2-process multi-worker run."""

import json
import os
import socket
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf
from conftest import tiny_config as base_tiny_config

from tf_gadn.training import checkpoints, loop
from tf_gadn.training.config import Config

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TINY = dict(sample_every=0)  # on top of configs/test/gadn_tiny.flags


def tiny_config(data_dir, model_dir, **changes) -> Config:
    return base_tiny_config(
        "gadn_tiny", data_dir=str(data_dir), model_dir=str(model_dir), **{**TINY, **changes}
    )


def network_weights(config: Config, stage: str) -> dict[str, np.ndarray]:
    reader = tf.train.load_checkpoint(checkpoints.latest(config.model_dir, stage))
    return {
        name: reader.get_tensor(name)
        for name in reader.get_variable_to_shape_map()
        if name.startswith("networks/")
    }


def run_stage(config: Config, stage: str, strategy=None, artists=None):
    from tf_gadn.data import records

    artists = artists or records.read_artists(config.data_dir)
    return loop.train_stage(
        config, stage, strategy or tf.distribute.get_strategy(), artists, progress=False
    )


def run_killed_and_resumed(config: Config, stage: str, kill_after: int, monkeypatch) -> None:
    """Trains the stage with a stop request (as SIGTERM makes) after step `kill_after`, then reruns it to the end."""
    on_step = loop.StopOnSignal.on_train_batch_end

    def stop_after(self, batch, logs=None):
        if batch == kill_after:
            self.requested.set()
        on_step(self, batch, logs)

    with monkeypatch.context() as patch:
        patch.setattr(loop.StopOnSignal, "on_train_batch_end", stop_after)
        with pytest.raises(loop.TrainingInterrupted, match=f"step {kill_after}"):
            run_stage(config, stage)
    run_stage(config, stage)


def assert_same_weights(a: dict, b: dict, atol=0.0):
    assert a.keys() == b.keys() and a
    for name in a:
        np.testing.assert_allclose(a[name], b[name], atol=atol, rtol=0, err_msg=name)


def test_resume_continues_exactly(tiny_dataset, tmp_path):
    straight = tiny_config(tiny_dataset, tmp_path / "straight", stage1_steps=6)
    run_stage(straight, "gadn_stage1")
    halves = tiny_config(tiny_dataset, tmp_path / "halves", stage1_steps=3)
    run_stage(halves, "gadn_stage1")
    run_stage(halves.replace(stage1_steps=6), "gadn_stage1")
    assert_same_weights(
        network_weights(straight, "gadn_stage1"),
        network_weights(halves.replace(stage1_steps=6), "gadn_stage1"),
    )
    # The checkpoint holds every variable of every network (Keras 3 nesting must not hide any).
    from tf_gadn.data import records

    stage, _, _ = loop.build_stage(
        straight,
        "gadn_stage1",
        tf.distribute.get_strategy(),
        records.read_artists(straight.data_dir),
    )
    assert len(network_weights(straight, "gadn_stage1")) == sum(
        len(n.weights) for n in stage.networks().values()
    )


def test_mirror_augment_reaches_the_training_stream_and_not_the_statistics_pass(
    tiny_dataset, tmp_path
):
    """--mirror_augment flips some training images; the in-order pass that computes statistics and grids is unflipped."""
    from tf_gadn.gadn.stage1 import GadnStage1

    plain = tiny_config(tiny_dataset, tmp_path)
    mirrored = plain.replace(mirror_augment=True)

    def images(config, make):
        return np.concatenate([b["image"].numpy() for b in make(config).take(4)])

    train = lambda c: loop.stage_dataset(c, GadnStage1, 8)  # noqa: E731
    statistics = lambda c: loop.eval_dataset(c, GadnStage1, 8)  # noqa: E731
    assert not np.array_equal(images(plain, train), images(mirrored, train))
    np.testing.assert_array_equal(images(plain, statistics), images(mirrored, statistics))


def test_schedule_factors():
    assert loop.schedule_factor("cosine", 1, 6) == 1.0
    factors = [loop.schedule_factor("cosine", s, 6) for s in range(1, 7)]
    assert all(a > b for a, b in zip(factors, factors[1:])) and factors[-1] < 0.1
    assert loop.schedule_factor("constant", 5, 6) == 1.0
    warm = [loop.schedule_factor("constant", s, 6, warmup_steps=4) for s in range(1, 7)]
    assert warm == [0.25, 0.5, 0.75, 1.0, 1.0, 1.0]
    assert loop.schedule_factor("cosine", 2, 6, warmup_steps=4) == 0.5 * factors[1]


@pytest.mark.parametrize(
    "schedule", [{"lr_schedule": "cosine"}, {"lr_warmup_steps": 4}], ids=["cosine", "warmup"]
)
def test_a_schedule_changes_the_update_and_a_killed_run_resumes_on_the_same_curve(
    schedule, tiny_dataset, tmp_path, monkeypatch
):
    straight = tiny_config(tiny_dataset, tmp_path / "straight", stage1_steps=6, **schedule)
    run_stage(straight, "gadn_stage1")
    constant = tiny_config(tiny_dataset, tmp_path / "constant", stage1_steps=6)
    run_stage(constant, "gadn_stage1")

    killed = tiny_config(tiny_dataset, tmp_path / "killed", stage1_steps=6, **schedule)
    run_killed_and_resumed(killed, "gadn_stage1", 3, monkeypatch)
    assert_same_weights(
        network_weights(straight, "gadn_stage1"), network_weights(killed, "gadn_stage1")
    )
    # The schedule changed the update (the scheduled run is not the constant-rate run).
    scheduled, flat = (
        network_weights(straight, "gadn_stage1"),
        network_weights(constant, "gadn_stage1"),
    )
    assert any(not np.array_equal(scheduled[name], flat[name]) for name in scheduled)


def test_two_replicas_make_the_single_device_update(tiny_dataset, tmp_path, mirrored_strategy):
    single = tiny_config(tiny_dataset, tmp_path / "single", stage1_steps=2)
    single_metrics = run_stage(single, "gadn_stage1")
    mirrored = tiny_config(tiny_dataset, tmp_path / "mirrored", stage1_steps=2)
    mirrored_metrics = run_stage(mirrored, "gadn_stage1", mirrored_strategy)
    assert_same_weights(
        network_weights(single, "gadn_stage1"), network_weights(mirrored, "gadn_stage1"), atol=1e-5
    )
    for name, value in single_metrics.items():
        assert mirrored_metrics[name] == pytest.approx(value, rel=1e-4, abs=1e-5), name


def test_non_finite_loss_stops_and_keeps_last_good_checkpoint(tiny_dataset, tmp_path):
    config = tiny_config(tiny_dataset, tmp_path / "nan", stage1_steps=2)
    run_stage(config, "gadn_stage1")
    good = network_weights(config, "gadn_stage1")
    exploding = config.replace(stage1_steps=4, lambda_c1=float("inf"))
    with pytest.raises(loop.NonFiniteLossError, match=r"step 3.*Last good checkpoint: .*ckpt-2"):
        run_stage(exploding, "gadn_stage1")
    assert checkpoints.latest(config.model_dir, "gadn_stage1").endswith("ckpt-2")
    assert_same_weights(good, network_weights(config, "gadn_stage1"))
    assert all(np.isfinite(v).all() for v in good.values())


def _train_cli(*args, env=None, timeout=300):
    return subprocess.run(
        [sys.executable, "-m", "tf_gadn.train", *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def test_flagfile_trains_the_whole_gadn_chain(tiny_dataset, tmp_path):
    model_dir = tmp_path / "chain"
    result = _train_cli(
        "--flagfile=configs/test/gadn_tiny.flags",
        f"--data_dir={tiny_dataset}",
        f"--model_dir={model_dir}",
    )
    assert result.returncode == 0, result.stderr[-3000:]
    for stage in ("gadn_stage1", "c2_pretrain", "gadn_stage2"):
        assert checkpoints.latest(str(model_dir), stage).endswith("ckpt-4"), stage
    assert os.path.exists(model_dir / "style_x_content.png")
    assert os.path.exists(model_dir / "gadn_stage1" / "content_stats.npz")
    assert json.load(open(model_dir / "config.json"))["image_size"] == 32
    # Stage 2 starts from stage 1's encoder and never changes it.
    stage1 = tf.train.load_checkpoint(checkpoints.latest(str(model_dir), "gadn_stage1"))
    stage2 = tf.train.load_checkpoint(checkpoints.latest(str(model_dir), "gadn_stage2"))
    encoder_vars = [
        n
        for n in stage1.get_variable_to_shape_map()
        if n.startswith("networks/encoder/") and "OPTIMIZER_SLOT" not in n
    ]
    assert encoder_vars
    for name in encoder_vars:
        np.testing.assert_array_equal(stage1.get_tensor(name), stage2.get_tensor(name))
    # Rerunning finds every stage complete and trains nothing.
    again = _train_cli(
        "--flagfile=configs/test/gadn_tiny.flags",
        f"--data_dir={tiny_dataset}",
        f"--model_dir={model_dir}",
    )
    assert again.returncode == 0 and again.stdout.count("already complete") == 3


def test_sigterm_saves_the_step_in_flight_and_a_rerun_continues(tiny_dataset, tmp_path):
    import signal
    import time

    model_dir = tmp_path / "killed"
    args = [
        "--flagfile=configs/test/gadn_tiny.flags",
        "--stage=gadn_stage1",
        f"--data_dir={tiny_dataset}",
        f"--model_dir={model_dir}",
        "--checkpoint_every=100000",
        "--log_every=1",
    ]
    proc = subprocess.Popen(
        [sys.executable, "-u", "-m", "tf_gadn.train", *args, "--stage1_steps=100000"],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.time() + 120
    for line in proc.stdout:  # wait until training is really under way
        if "step 5/" in line or time.time() > deadline:
            break
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err[-2000:]
    assert "checkpoint saved" in err
    saved = int(checkpoints.latest(str(model_dir), "gadn_stage1").rsplit("-", 1)[1])
    assert saved >= 5
    assert not os.path.exists(model_dir / "gadn_stage1" / "DONE")
    result = _train_cli(*args, f"--stage1_steps={saved + 2}")
    assert result.returncode == 0, result.stderr[-2000:]
    assert checkpoints.latest(str(model_dir), "gadn_stage1").endswith(f"ckpt-{saved + 2}")
    assert os.path.exists(model_dir / "gadn_stage1" / "content_stats.npz")


def _free_ports(n):
    sockets = [socket.socket() for _ in range(n)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def test_two_process_multi_worker_run_completes(tiny_dataset, tmp_path):
    workers = [f"127.0.0.1:{p}" for p in _free_ports(2)]
    model_dir = tmp_path / "multi_worker"
    procs = []
    for index in range(2):
        env = dict(
            os.environ,
            TF_CONFIG=json.dumps(
                {"cluster": {"worker": workers}, "task": {"type": "worker", "index": index}}
            ),
        )
        procs.append(
            subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "tf_gadn.train",
                    "--flagfile=configs/test/gadn_tiny.flags",
                    "--stage=c2_pretrain",
                    f"--data_dir={tiny_dataset}",
                    f"--model_dir={model_dir}",
                    "--strategy=multi_worker",
                    "--c2_steps=3",
                ],
                cwd=REPO,
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
        )
    outputs = []
    try:
        for proc in procs:
            outputs.append(proc.communicate(timeout=240))
    finally:
        for proc in procs:
            proc.kill()
    for proc, (_, err) in zip(procs, outputs):
        assert proc.returncode == 0, err[-3000:]
    assert checkpoints.latest(str(model_dir), "c2_pretrain").endswith("ckpt-3")
    assert not [d for d in os.listdir(model_dir / "c2_pretrain") if d.startswith("tmp_ckpt")]


@pytest.mark.parametrize("option", ["jit_compile", "mixed_precision"])
def test_xla_and_bfloat16_options_train(tiny_dataset, tmp_path, option):
    config = tiny_config(tiny_dataset, tmp_path / option, stage1_steps=2, **{option: True})
    try:
        metrics = run_stage(config, "gadn_stage1")
    finally:
        import keras

        keras.mixed_precision.set_global_policy("float32")
    assert np.isfinite(list(metrics.values())).all() and metrics["reconstruction"] > 0
