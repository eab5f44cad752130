"""Which compute precision a run trains in: `--mixed_precision=auto` (the default) picks mixed bfloat16 where the
hardware multiplies bfloat16 natively, float32 elsewhere.

Mixed bfloat16 keeps float32 master weights, optimizer slots and losses (the networks cast their outputs to float32,
tf_gadn/nn/networks.py, so KL, NLL and softmax never run in bfloat16). bfloat16 has float32's exponent range, so no
loss scaling is needed. Native bfloat16 on a CPU means AMX (Sapphire Rapids and later) or AVX512-BF16 (Cooper Lake,
AMD Zen 4); without them TensorFlow emulates bfloat16 and the step gets slower, not faster. On a GPU, compute
capability 8.0 (Ampere) and later.
"""

from __future__ import annotations

CPU_BF16_FLAGS = ("amx_bf16", "avx512_bf16")
SETTINGS = ("auto", "true", "false")


def cpu_flags(path: str = "/proc/cpuinfo") -> frozenset[str]:
    """The feature flags the kernel reports for the first CPU (empty where there is no /proc/cpuinfo)."""
    try:
        with open(path) as f:
            for line in f:
                if line.startswith("flags"):
                    return frozenset(line.split(":", 1)[1].split())
    except OSError:
        pass
    return frozenset()


def gpus_have_bf16() -> bool | None:
    """True when every visible GPU has compute capability >= 8.0; None when there is no GPU."""
    import tensorflow as tf

    gpus = tf.config.list_physical_devices("GPU")
    if not gpus:
        return None
    capabilities = [
        tf.config.experimental.get_device_details(gpu).get("compute_capability", (0, 0))
        for gpu in gpus
    ]
    return all(tuple(c) >= (8, 0) for c in capabilities)


def normalize(setting) -> str:
    """'auto' | 'true' | 'false' from a flag string or a bool (config.json of runs written before 'auto')."""
    if isinstance(setting, bool):
        return "true" if setting else "false"
    value = str(setting).strip().lower()
    value = {"1": "true", "yes": "true", "0": "false", "no": "false"}.get(value, value)
    if value not in SETTINGS:
        raise ValueError(f"mixed_precision must be one of {SETTINGS}, got {setting!r}")
    return value


def use_bfloat16(
    setting, flags: frozenset[str] | None = None, gpu_bf16: bool | None = None
) -> bool:
    """The decision: 'true'/'false' as asked; 'auto' = bfloat16 when the devices that run the step have it (the GPUs
    when there are any, else the CPU's AMX or AVX512-BF16). `flags` and `gpu_bf16` default to this machine's."""
    value = normalize(setting)
    if value != "auto":
        return value == "true"
    if gpu_bf16 is None and flags is None:
        gpu_bf16 = gpus_have_bf16()
    if gpu_bf16 is not None:
        return gpu_bf16
    flags = cpu_flags() if flags is None else flags
    return any(flag in flags for flag in CPU_BF16_FLAGS)


def emulation_warning(
    setting, flags: frozenset[str] | None = None, gpu_bf16: bool | None = None
) -> str | None:
    """A warning when bfloat16 is forced ('true') on devices without it: TensorFlow then emulates it, which is slower,
    not faster (the GADN demo's stage 1 on a 2-core AVX2-only AMD EPYC: 0.13 steps/s forced, 0.88 in float32)."""
    if normalize(setting) != "true" or use_bfloat16("auto", flags, gpu_bf16):
        return None
    return (
        "WARNING: --mixed_precision=true on devices without native bfloat16 (no GPU of compute capability >= 8.0, "
        f"no CPU flag {' or '.join(CPU_BF16_FLAGS)}): TensorFlow emulates it and training runs several times "
        "slower than float32 (--mixed_precision=auto picks float32 here)"
    )


def policy_name(setting) -> str:
    """The Keras dtype policy of a run."""
    return "mixed_bfloat16" if use_bfloat16(setting) else "float32"
