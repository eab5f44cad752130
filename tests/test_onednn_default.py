"""Importing tf_gadn before TensorFlow turns oneDNN's kernels on (TensorFlow's own default leaves them off on AVX2-only
CPUs, where they made the demo's step 1.3x faster), and the user's TF_ENABLE_ONEDNN_OPTS=0 still wins."""

import os
import subprocess
import sys

import pytest

PROBE = (
    "import tf_gadn, tensorflow; from tensorflow.python.util import _pywrap_util_port as port; "
    "print(port.IsMklEnabled())"
)


@pytest.mark.parametrize("setting, expected", [(None, "True"), ("0", "False")])
def test_onednn_follows_the_package_default_and_the_user(setting, expected):
    env = {k: v for k, v in os.environ.items() if k != "TF_ENABLE_ONEDNN_OPTS"}
    if setting is not None:
        env["TF_ENABLE_ONEDNN_OPTS"] = setting
    out = subprocess.run(
        [sys.executable, "-c", PROBE], env=env, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip().splitlines()[-1] == expected
