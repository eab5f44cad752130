"""Options that make training faster or let it fit. --accumulate_steps K: K micro-batches of B/K give the update
one batch of B gives, for every stage of every method (several optimizers and critic/generator alternation
included), on one device and under MirroredStrategy. --mixed_precision: the auto decision, float32 master weights,
and a bfloat16 loss curve like float32's."""

import keras
import numpy as np
import pytest
import tensorflow as tf
from conftest import tiny_config

from tf_gadn.data import records
from tf_gadn.training import loop, precision, registry
from tf_gadn.training.optimizers import FusedAdam

STAGES = [(method.name, stage) for method in registry.methods().values() for stage in method.chain]


def _batch(config, cls, batch_size):
    return next(iter(loop.stage_dataset(config, cls, batch_size)))


def _one_step(config, stage_name, strategy, batch):
    """(weights and optimizer slots of the trained networks before, after) one train_step on `batch`."""
    stage, _, _ = loop.build_stage(
        config, stage_name, strategy, records.read_artists(config.data_dir)
    )
    variables = [v for group in stage.trained_variables().values() for v in group]
    variables += [v for optimizer in stage.optimizers.values() for v in optimizer.variables]
    before = [np.array(v.numpy()) for v in variables]
    if strategy is tf.distribute.get_strategy():
        tf.function(stage.train_step)(batch)
    else:
        size = int(batch["artist"].shape[0])
        data = tf.data.Dataset.from_tensor_slices(batch).batch(size)
        distributed = next(iter(strategy.experimental_distribute_dataset(data)))
        tf.function(lambda b: strategy.run(stage.train_step, args=(b,)))(distributed)
    return before, [np.array(v.numpy()) for v in variables]


# A ReLU or PReLU unit whose input lies within float rounding of its kink takes the other slope when the batch is
# split (the convolutions round differently at another batch size). Its forward value hardly moves, but the gradient
# of the weights feeding it does: a few elements of one layer, by up to a few percent (seen once: the first layer of
# the style-space GAN's smallest discriminator, 0.9% in one bias velocity). A wrong accumulation (a missed
# micro-batch, a mean taken as a sum) moves most elements, so the test allows a few flips and nothing larger.
KINK_FLIP_ELEMENTS = 1e-3  # share of all elements allowed past the tight tolerance
KINK_FLIP_RTOL = 0.1


def _assert_same_update(whole, accumulated):
    (before, after), (before_k, after_k) = whole, accumulated
    assert len(after) == len(after_k)
    moved = loose = total = 0
    for b, a, bk, ak in zip(before, after, before_k, after_k):
        np.testing.assert_array_equal(b, bk)  # same initial weights
        np.testing.assert_allclose(ak, a, rtol=KINK_FLIP_RTOL, atol=1e-6)
        loose += int(np.sum(~np.isclose(ak, a, rtol=1e-4, atol=1e-6)))
        total += a.size
        moved += int(not np.array_equal(a, b))
    assert loose <= KINK_FLIP_ELEMENTS * total, (loose, total)
    assert moved > len(after) // 2  # the step did update (else equality would say nothing)


@pytest.mark.parametrize("method_name, stage_name", STAGES, ids=[stage for _, stage in STAGES])
def test_micro_batches_give_the_whole_batch_update(method_name, stage_name, tiny_dataset, tmp_path):
    config = tiny_config(f"{method_name}_tiny", data_dir=str(tiny_dataset), model_dir=str(tmp_path))
    cls = registry.stage_class(stage_name)
    batch = _batch(config, cls, cls.batch_size(config))
    strategy = tf.distribute.get_strategy()
    whole = _one_step(config, stage_name, strategy, batch)
    accumulated = _one_step(config.replace(accumulate_steps=2), stage_name, strategy, batch)
    _assert_same_update(whole, accumulated)


@pytest.fixture
def mirrored(mirrored_strategy):
    """The session's one MirroredStrategy (tests/conftest.py says why there is only one)."""
    return mirrored_strategy


@pytest.mark.parametrize("stage_name", ["gadn_stage2"])
def test_micro_batches_under_mirrored_strategy(stage_name, mirrored, tiny_dataset, tmp_path):
    """2 replicas x 2 micro-batches of 1 example = one device's batch of 4. GADN stage 2 stands for every stage here
    (three updates, two optimizers in the last, a style table's row gradients): a mirrored trace is slow."""
    config = tiny_config("gadn_tiny", data_dir=str(tiny_dataset), model_dir=str(tmp_path))
    cls = registry.stage_class(stage_name)
    batch = _batch(config, cls, cls.batch_size(config))
    whole = _one_step(config, stage_name, tf.distribute.get_strategy(), batch)
    accumulated = _one_step(config.replace(accumulate_steps=2), stage_name, mirrored, batch)
    _assert_same_update(whole, accumulated)


def test_accumulate_steps_must_divide_the_batch(tiny_dataset, tmp_path):
    config = tiny_config("gadn_tiny", data_dir=str(tiny_dataset), model_dir=str(tmp_path))
    with pytest.raises(ValueError, match="accumulate_steps"):
        loop.build_stage(
            config.replace(accumulate_steps=3),
            "gadn_stage1",
            tf.distribute.get_strategy(),
            records.read_artists(str(tiny_dataset)),
        )


@pytest.mark.parametrize(
    "setting, flags, gpu, expected",
    [
        ("auto", {"avx512f", "amx_bf16", "amx_tile"}, None, True),  # Sapphire Rapids
        ("auto", {"avx512f", "avx512_bf16"}, None, True),  # Zen 4, Cooper Lake
        ("auto", {"avx512f", "avx2"}, None, False),  # Skylake / Ice Lake: emulated bfloat16
        ("auto", set(), None, False),  # no /proc/cpuinfo
        ("auto", {"avx512_bf16"}, False, False),  # an older GPU runs the step, not the CPU
        ("auto", set(), True, True),  # Ampere and later
        ("true", set(), None, True),
        ("false", {"amx_bf16"}, True, False),
        (True, set(), None, True),  # config.json written before 'auto'
        (False, {"amx_bf16"}, None, False),
    ],
)
def test_mixed_precision_auto_decision(setting, flags, gpu, expected):
    assert precision.use_bfloat16(setting, frozenset(flags), gpu) is expected


@pytest.mark.parametrize(
    "setting, flags, gpu, warns",
    [
        ("true", set(), None, True),  # AVX2-only CPU, no GPU: emulated
        ("true", {"avx512_bf16"}, None, False),
        ("true", set(), True, False),  # Ampere GPU
        ("true", {"amx_bf16"}, False, True),  # the step runs on the older GPU, not the CPU
        ("auto", set(), None, False),
        ("false", set(), None, False),
    ],
)
def test_forced_bfloat16_without_hardware_warns(setting, flags, gpu, warns):
    message = precision.emulation_warning(setting, frozenset(flags), gpu)
    assert (message is not None) is warns
    if warns:
        assert "--mixed_precision=auto" in message


def test_mixed_precision_reads_cpu_flags(tmp_path):
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("processor\t: 0\nflags\t\t: fpu sse avx512_bf16 avx512f\n\nprocessor\t: 1\n")
    assert precision.cpu_flags(str(cpuinfo)) == {"fpu", "sse", "avx512_bf16", "avx512f"}
    assert precision.cpu_flags(str(tmp_path / "missing")) == frozenset()
    with pytest.raises(ValueError, match="mixed_precision"):
        precision.normalize("bf16")


def test_policy_follows_the_setting(tiny_dataset, tmp_path, monkeypatch, capsys):
    config = tiny_config("gadn_tiny", data_dir=str(tiny_dataset), model_dir=str(tmp_path))
    # a CPU that emulates bfloat16
    monkeypatch.setattr(precision, "cpu_flags", lambda: frozenset({"avx2"}))
    try:
        stage, _, _ = loop.build_stage(
            config.replace(mixed_precision="true"),
            "c2_pretrain",
            tf.distribute.get_strategy(),
            records.read_artists(str(tiny_dataset)),
        )
        assert keras.mixed_precision.global_policy().name == "mixed_bfloat16"
        assert all(v.dtype == "float32" for v in stage.trainable_variables)  # master weights
        assert (
            "[c2_pretrain] WARNING: --mixed_precision=true on devices without"
            in capsys.readouterr().err
        )
    finally:
        keras.mixed_precision.set_global_policy("float32")


def _reconstruction_curve(config, steps: int) -> list[float]:
    stage, _, _ = loop.build_stage(
        config, "gadn_stage1", tf.distribute.get_strategy(), records.read_artists(config.data_dir)
    )
    keras.mixed_precision.set_global_policy("float32")
    cls = type(stage)
    dataset = loop.stage_dataset(config, cls, cls.batch_size(config))
    step = tf.function(stage.train_step)
    curve = []
    for batch in dataset.take(steps):
        curve.append(float(step(batch)["reconstruction"]))
        for metric in stage.tracker.values():
            metric.reset_state()
    return curve


def test_bfloat16_learns_like_float32(tiny_dataset, tmp_path):
    """Same seed, same batches: the mixed-bfloat16 stage-1 reconstruction curve follows float32's, every step within
    10% and the mean of 12 steps within 3% (measured: at most 5.1% and 1.3%; bfloat16 keeps 8 bits of mantissa,
    weights, optimizer state and losses stay float32, and two runs drift apart slowly as training is chaotic)."""
    config = tiny_config(
        "gadn_tiny", data_dir=str(tiny_dataset), model_dir=str(tmp_path), stage1_lr=1e-3
    )
    float32 = _reconstruction_curve(config, 12)
    bfloat16 = _reconstruction_curve(config.replace(mixed_precision="true"), 12)
    np.testing.assert_allclose(bfloat16, float32, rtol=0.1)
    assert np.mean(bfloat16) == pytest.approx(np.mean(float32), rel=0.03)
    assert bfloat16 != float32  # the policy took effect


def _updater(optimizer, variables):
    optimizer.build(variables)

    @tf.function
    def update(step_grads):
        rows = tf.IndexedSlices(step_grads[2][:2], tf.constant([4, 1]), tf.constant([6, 5]))
        optimizer.apply([step_grads[0], step_grads[1], rows], variables)

    return update


def test_fused_adam_is_keras_adam_to_the_last_bits():
    """--fused_adam: three updates of dense and row (style-table) gradients match Keras's Adam to float rounding."""
    rng = np.random.default_rng(0)
    shapes = [(3, 3, 4, 8), (8,), (6, 5)]
    start = [rng.standard_normal(s).astype("float32") for s in shapes]
    grads = [[rng.standard_normal(s).astype("float32") for s in shapes] for _ in range(3)]
    results = []
    for adam in (keras.optimizers.Adam, FusedAdam):
        variables = [keras.Variable(value) for value in start]
        update = _updater(adam(1e-2), variables)
        for step_grads in grads:
            update([tf.constant(g) for g in step_grads])
        results.append([v.numpy() for v in variables])
    for keras_value, fused_value, first in zip(*results, start):
        assert not np.array_equal(fused_value, first)
        np.testing.assert_allclose(fused_value, keras_value, rtol=1e-5, atol=1e-6)  # 1e-4 of a step


def test_fused_adam_under_mirrored_strategy(mirrored, tiny_dataset, tmp_path):
    config = tiny_config("gadn_tiny", data_dir=str(tiny_dataset), model_dir=str(tmp_path))
    cls = registry.stage_class("c2_pretrain")
    batch = _batch(config, cls, cls.batch_size(config))
    keras_adam = _one_step(config, "c2_pretrain", tf.distribute.get_strategy(), batch)
    fused = _one_step(config.replace(fused_adam=True), "c2_pretrain", mirrored, batch)
    _assert_same_update(keras_adam, fused)


def test_fused_adam_computes_its_scalars_once_per_update():
    """The beta powers and learning rate of a fused update are computed once for all variables, not per variable:
    a small step is bound by its op count, and Keras computes them for each of ~90 variables."""
    shapes = [(3, 3, 4, 8), (8,), (4, 2), (2,)]
    variables = [keras.Variable(np.zeros(s, "float32")) for s in shapes]
    optimizer = FusedAdam(1e-2)
    optimizer.build(variables)
    update = tf.function(lambda grads: optimizer.apply(grads, variables))
    graph = update.get_concrete_function([tf.TensorSpec(s) for s in shapes]).graph
    types = [op.type for op in graph.get_operations()]
    assert types.count("ResourceApplyAdam") == len(shapes)
    assert types.count("Pow") == 2  # beta_1^t and beta_2^t, shared


def test_thread_settings_apply_before_the_runtime_starts(tmp_path):
    """--inter_op_threads/--intra_op_threads take effect when set before any op, and a late change is refused
    with a message instead of silently ignored (a fresh process: this one's runtime has started)."""
    import subprocess
    import sys

    code = (
        "import tensorflow as tf; from tf_gadn.training import distribute; "
        "distribute.set_threads(1, 1); tf.constant(1.0) + 1; "
        "print(tf.config.threading.get_inter_op_parallelism_threads(), "
        "tf.config.threading.get_intra_op_parallelism_threads()); "
        "distribute.set_threads(1, 1)\n"
        "try:\n    distribute.set_threads(2, 2)\nexcept RuntimeError as err:\n    print('refused', err)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={
            **__import__("os").environ,
            "PYTHONPATH": str(__import__("pathlib").Path(__file__).parents[1]),
        },
    )
    assert result.returncode == 0, result.stderr[-2000:]
    lines = result.stdout.strip().splitlines()
    assert lines[0] == "1 1"
    assert lines[1].startswith("refused") and "before any TensorFlow op" in lines[1]
