"""The sampler's batch-norm statistics: recalibrated (precise BN) or the moving averages, on tiny data."""

import json

import numpy as np
import pytest
import tensorflow as tf

from common.config import Config, ConfigError
from common.data import ImageSet
from common.layers import Layers
from common.rundir import RunDir
from common.sampling import RECALIBRATION_SAMPLES, Generator
from common.step import call_network
from common.streams import RECALIBRATION_STREAM, sample_noise
from common.train import train
from dcgan_mnist.__main__ import cli
from dcgan_mnist.model import SPEC as NOTEBOOK

v1 = tf.compat.v1


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    """12 steps of the notebook on 64 random 28x28 images: moving averages far from the batch statistics."""
    images = np.random.default_rng(0).integers(0, 256, (64, 28, 28, 1), dtype=np.uint8)
    data = ImageSet(images, np.zeros(64, np.int64), tuple("0123456789"), "synthetic")
    out = tmp_path_factory.mktemp("runs") / "tiny"
    config = Config(batch_size=16, max_steps=12, checkpoint_every=12, precision="float32", out=str(out))
    train(NOTEBOOK, config, data, RunDir(out), progress=False)
    return RunDir(out), config


def training_mode_images(generator: Generator, noise: np.ndarray) -> np.ndarray:
    """The same weights, in training mode (batch statistics) without dropout: an independent graph."""
    graph = tf.Graph()
    with graph.as_default():
        v1.set_random_seed(0)
        z = v1.placeholder(tf.float32, [None, generator.config.noise_dim])
        images = call_network(
            NOTEBOOK.generator, "generator", False, z, True, generator.config.replace(keep_prob=1.0), Layers()
        )
        variables = {v.op.name: v for v in v1.global_variables()}
        weights = generator.session.run(generator.variables)
        assigns = [v1.assign(variables[name], value) for name, value in weights.items()]
    with v1.Session(graph=graph) as sess:
        sess.run(assigns)
        return sess.run(images, {z: noise})


def test_recalibration_sets_the_statistics_of_the_measured_batch(tiny_run):
    run, config = tiny_run
    noise = sample_noise(config, RECALIBRATION_SAMPLES, config.seed, RECALIBRATION_STREAM)
    with (
        Generator.from_run(run, NOTEBOOK, config, sampler_stats="moving") as moving,
        Generator.from_run(run, NOTEBOOK, config, sampler_stats="recalibrated") as recalibrated,
    ):
        recalibrated_images = recalibrated.session.run(
            recalibrated.sampler.images, {recalibrated.sampler.noise: noise}
        )
        # Statistics equal to the pass's own: inference mode on that noise is training mode on it.
        np.testing.assert_allclose(recalibrated_images, training_mode_images(recalibrated, noise), atol=2e-4)
        moving_images = moving.session.run(moving.sampler.images, {moving.sampler.noise: noise})
        assert np.abs(moving_images - recalibrated_images).max() > 0.05  # the averages had not caught up
        reader = tf.train.load_checkpoint(run.latest_checkpoint())
        for name, value in moving.statistics().items():  # "moving" keeps the checkpoint's averages
            np.testing.assert_array_equal(value, reader.get_tensor(name))
        changed = [
            n for n, v in recalibrated.statistics().items() if not np.allclose(v, reader.get_tensor(n))
        ]
        assert len(changed) == 6  # three batch norms, a mean and a variance each
        # The weights are the checkpoint's either way.
        kernel = "generator/dense/kernel"
        np.testing.assert_array_equal(
            recalibrated.session.run(recalibrated.variables[kernel]), reader.get_tensor(kernel)
        )


def test_load_takes_a_live_sessions_weights_and_recalibrates(tiny_run):
    run, config = tiny_run
    with (
        Generator.from_run(run, NOTEBOOK, config) as restored,
        Generator(NOTEBOOK, config) as loaded,
    ):
        loaded.load(restored.session.run(restored.variables))
        np.testing.assert_allclose(loaded.generate(8, 3), restored.generate(8, 3), atol=1)
        with pytest.raises(KeyError, match="no values"):
            loaded.load({})


def test_sampler_stats_is_a_recorded_setting(tiny_run, tmp_path, capsys):
    run, config = tiny_run
    saved = json.loads(run.config.read_text())["config"]
    assert saved["sampler_stats"] == "recalibrated"  # the default
    with pytest.raises(ConfigError, match="--sampler-stats"):
        Config(sampler_stats="exact").validate()
    grids = {}
    for stats in ("moving", "recalibrated"):
        out = tmp_path / f"{stats}.npy"
        assert (
            cli(["sample", "--run", str(run.path), "--n", "9", "--out", str(out), "--sampler-stats", stats])
            == 0
        )
        assert f"{stats} statistics" in capsys.readouterr().out
        grids[stats] = np.load(out)
    assert (grids["moving"] != grids["recalibrated"]).any()
