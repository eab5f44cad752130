"""Adding a method is one package plus one registration (BUILD.md, "Architecture"): a toy method registered here,
with no change to the shared layers, is trained by the train entry point through the one loop, checkpointed, and
rebuilt from its run directory as export and evaluation rebuild a run."""

import keras
import numpy as np
import pytest
import tensorflow as tf
from conftest import tiny_config

from tf_gadn import losses, train
from tf_gadn.training import checkpoints, registry
from tf_gadn.training.stage import Stage


class Painter(keras.Model):
    """The whole toy model: one 1x1 convolution from an image to an image."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.mix = keras.layers.Conv2D(3, 1, name="mix")
        self(tf.zeros([1, 8, 8, 3]))

    def call(self, x):
        return self.mix(x)


def build_networks(config, num_artists, names=None):
    builders = {"painter": lambda: Painter(name="painter")}
    return {name: builders[name]() for name in (names or builders)}


class ToyStage(Stage):
    NAME = "toy_stage"
    CONFIG_PREFIX = "stage1"  # reuses --stage1_steps / --stage1_batch_size

    @classmethod
    def noise_dim(cls, config):
        return (
            3  # a per-pixel colour shift, drawn by the input pipeline like every stage's randomness
        )

    def __init__(self, config, artist_counts, global_batch_size):
        super().__init__(config, artist_counts, global_batch_size)
        self.painter = build_networks(config, self.num_artists)["painter"]
        self.add_trackers("reconstruction")

    def networks(self):
        return {"painter": self.painter}

    def make_optimizers(self):
        return {"painter": self.new_optimizer("adam", 1e-2)}

    def train_step(self, batch):
        x = batch["image"]
        shifted = x + 0.1 * batch["noise"][:, None, None, :]
        with tf.GradientTape() as tape:
            loss = self.batch_mean(losses.squared_reconstruction(x, self.painter(shifted)))
        self.minimize(tape, loss, "painter")
        self.track(reconstruction=loss)
        return self.results()


@pytest.fixture
def toy_method():
    method = registry.register(
        registry.Method(name="toy", stages={"toy_stage": ToyStage}, networks=build_networks)
    )
    yield method
    registry.unregister("toy")


def test_a_registered_toy_method_trains_through_the_shared_loop(toy_method, tiny_dataset, tmp_path):
    config = tiny_config(
        "gadn_tiny",
        method="toy",
        stage="all",
        data_dir=str(tiny_dataset),
        model_dir=str(tmp_path),
        stage1_steps=20,
        log_every=10,
        checkpoint_every=10,
        sample_every=0,
    )
    results = train.run(config)
    assert list(results) == ["toy_stage"]
    assert np.isfinite(results["toy_stage"]["reconstruction"])
    assert checkpoints.saved_step(checkpoints.latest(str(tmp_path), "toy_stage")) == 20
    assert registry.stages_to_run("toy", "all") == ("toy_stage",)
    rebuilt_config, _, networks = checkpoints.load_trained(str(tmp_path))
    assert rebuilt_config.method == "toy" and set(networks) == {"painter"}
    # training moved the painter away from its (seeded) initial weights, and the rebuilt one holds the trained ones
    fresh = build_networks(config, 4)["painter"]
    assert not all(
        np.array_equal(a, b) for a, b in zip(fresh.get_weights(), networks["painter"].get_weights())
    )


def test_stage_names_stay_unique_across_methods(toy_method):
    with pytest.raises(ValueError, match="already belong"):
        registry.register(
            registry.Method(name="toy2", stages={"gadn_stage1": ToyStage}, networks=build_networks)
        )
