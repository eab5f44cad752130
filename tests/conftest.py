"""Test-session setup: quiet TF logs, and two logical CPU devices so MirroredStrategy tests have 2 replicas
(must happen before any TensorFlow op runs, hence at conftest import)."""
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from tf_gadn import distribute  # noqa: E402

distribute.split_cpu(2)

import pytest  # noqa: E402


@pytest.fixture(scope="session")
def tiny_dataset(tmp_path_factory):
    """A real TFRecord data set of synthetic portraits: 4 artists x 16 images at 32 px, no test split."""
    from tf_gadn.data import synthetic
    out = tmp_path_factory.mktemp("data") / "tiny"
    synthetic.generate_dataset(str(out), num_artists=4, images_per_artist=16, image_size=32, seed=7,
                               test_split=False, num_shards=2, progress=False)
    return out
