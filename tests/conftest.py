"""Test-session setup: quiet TF logs, and two logical CPU devices so MirroredStrategy tests have 2 replicas
(must happen before any TensorFlow op runs, hence at conftest import)."""
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from tf_gadn.training import distribute  # noqa: E402

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


TINY_GADN = dict(method="gadn", stage="all", image_size=32, gadn_channels=(8, 16), gadn_blocks=(1, 1),
                 gadn_fc_width=32, content_dim=8, style_dim=8, mlp_layers=2, mlp_width=32, stage1_steps=6,
                 stage1_batch_size=4, c2_steps=4, c2_batch_size=4, stage2_steps=4, stage2_batch_size=4,
                 log_every=2, checkpoint_every=2, sample_every=4)


@pytest.fixture(scope="session")
def tiny_gadn_run(tiny_dataset, tmp_path_factory):
    """A GADN model_dir with all three stages trained a few steps (for evaluation, export and serving tests)."""
    from tf_gadn import train
    from tf_gadn.training.config import Config
    model_dir = tmp_path_factory.mktemp("runs") / "gadn"
    train.run(Config(data_dir=str(tiny_dataset), model_dir=str(model_dir), **TINY_GADN))
    return model_dir


@pytest.fixture(scope="session")
def tiny_gadn_export(tiny_gadn_run, tmp_path_factory):
    """The tiny GADN run exported as EXPORT_DIR/gadn/1 with every serving signature (export and serving tests)."""
    from tf_gadn.serving import export
    export_dir = tmp_path_factory.mktemp("exports")
    export.export(str(tiny_gadn_run), str(export_dir), "gadn")
    return export_dir
