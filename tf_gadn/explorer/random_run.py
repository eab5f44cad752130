"""A style-space run with initial (random) weights: what export needs from a trained run (config, artists, the
networks' checkpoint, style statistics), for the explorer's browser test, its latency benchmark at the paper's
network sizes and a screenshot where no trained run exists. The pictures are noise; the graph is the real one."""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from tf_gadn.style_space import networks as style_space
from tf_gadn.style_space.common import STYLE_STATS
from tf_gadn.training import checkpoints

NETWORKS = ("style_encoder", "representative_styles", "content_encoder", "generator")


def write_random_style_space_run(model_dir: str, config, num_artists: int, seed: int = 0) -> str:
    """Writes model_dir as a finished style-space run of `config` whose weights are the initial ones."""
    import os

    artists = [
        {"id": a, "name": f"artist_{a:02d}", "count": 4, "test_count": 0}
        for a in range(num_artists)
    ]
    checkpoints.save_run_info(model_dir, config, artists)
    tf.keras.utils.set_random_seed(seed)
    nets = style_space.build_networks(config, num_artists, NETWORKS)
    checkpoint = checkpoints.stage_checkpoint(tf.Variable(1, dtype=tf.int64), nets)
    tf.train.CheckpointManager(checkpoint, os.path.join(model_dir, "cond_gan", "ckpt"), 1).save()
    os.makedirs(os.path.join(model_dir, "style_encoder"), exist_ok=True)
    rng = np.random.default_rng(seed)
    np.savez(
        os.path.join(model_dir, "style_encoder", STYLE_STATS),
        mean=rng.standard_normal(config.d_style).astype(np.float32),
        std=rng.uniform(0.5, 2.0, config.d_style).astype(np.float32),
        count=4 * num_artists,
    )
    return model_dir
