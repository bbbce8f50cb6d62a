"""The notebook generator with --upsample resize (common.ingredients.ResizeUpsampling): shapes,
parameters, variables, the flag, resume.

Runs on a tiny synthetic CIFAR-10 the tests write themselves (tests.conftest.write_cifar10)."""

import json

import numpy as np
import pytest
import tensorflow as tf

from common.config import Config, ConfigError
from common.flops import parameter_counts
from common.layers import Layers, SeedStream
from common.step import call_network
from dcgan_cifar import model as cifar_model
from dcgan_cifar.__main__ import cli as cifar_cli
from dcgan_mnist import model as mnist_model
from dcgan_mnist.__main__ import cli as mnist_cli
from tests.conftest import notebook_parameters, write_cifar10

v1 = tf.compat.v1


def generator_variables(network, upsample: str, channels: int) -> tuple[list, dict, np.ndarray]:
    """(output static shape, {variable name: shape} of the generator, 2 generated images)."""
    config = Config(upsample=upsample)
    graph = tf.Graph()
    with graph.as_default():
        v1.set_random_seed(0)
        noise = v1.placeholder(tf.float32, [None, config.noise_dim])
        layers = Layers(seeds=SeedStream(tf.constant([0, 1], tf.int64)))
        images = call_network(network.generator, "generator", False, noise, True, config, layers)
        call_network(network.discriminator, "discriminator", False, images, True, config, layers)
        counts = parameter_counts()
        shapes = {v.name: v.shape.as_list() for v in v1.trainable_variables("generator/")}
        with v1.Session() as sess:
            sess.run(v1.global_variables_initializer())
            out = sess.run(images, {noise: np.random.default_rng(0).uniform(-1, 1, (2, 100))})
    assert counts == notebook_parameters(channels)  # a k x k convolution has the transposed one's count
    return images.shape.as_list(), shapes, out


@pytest.mark.parametrize(
    "network, channels, size, resized",
    [(cifar_model, 3, 32, ("2", "3", "4")), (mnist_model, 1, 28, ("3", "4"))],  # MNIST's layer 2: stride 1
)
def test_resize_generator_shapes_parameters_and_variables(network, channels, size, resized):
    shape, variables, out = generator_variables(network, "resize", channels)
    assert shape == [None, size, size, channels] and out.shape == (2, size, size, channels)
    assert np.abs(out).max() <= 1.0 and out.std() > 0
    names = {name.split("/")[1] for name in variables}
    assert {f"resize_conv{i}" for i in resized} <= names
    assert not {f"conv_transpose{i}" for i in resized} & names
    # A convolution's kernel is [k, k, in, out], a transposed one's [k, k, out, in]: other variables.
    last = variables["generator/resize_conv4/kernel:0"]
    assert last == [3, 3, 128, channels]
    _, default, _ = generator_variables(network, "transpose", channels)
    assert default["generator/conv_transpose4/kernel:0"] == [3, 3, channels, 128]
    assert not any("resize" in name for name in default)


def test_upsample_is_validated_and_other_architectures_refuse_resize(tmp_path, capsys):
    with pytest.raises(ConfigError, match="--upsample must be one of transpose, resize"):
        Config(upsample="bilinear").validate()
    out = tmp_path / "run"
    argv = ["train", "--arch", "tf_tutorial", "--upsample", "resize", "--out", str(out), "--no-progress"]
    assert mnist_cli(argv) == 2
    assert "--upsample resize is not available for arch 'tf_tutorial'" in capsys.readouterr().err
    assert not out.exists()


@pytest.fixture(scope="module")
def resize_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("upsample")
    write_cifar10(root / "data", per_class=1, test_per_class=1)
    out = root / "run"
    argv = ["train", "--data-dir", str(root / "data"), "--batch-size", "4", "--no-progress"]
    assert cifar_cli([*argv, "--upsample", "resize", "--out", str(out), "--max-steps", "2"]) == 0
    return argv, out


def test_resize_run_records_its_upsample(resize_run):
    _, out = resize_run
    record = json.loads((out / "config.json").read_text())
    assert record["config"]["upsample"] == "resize" and record["config"]["class_label"] == 7
    assert record["architecture"]["parameters"] == notebook_parameters(3)


def test_resume_refuses_another_upsample_and_keeps_the_run_s_own(resize_run, capsys):
    argv, out = resize_run
    before = sorted(p.name for p in (out / "checkpoints").iterdir())
    assert cifar_cli([*argv, "--out", str(out), "--resume", "--upsample", "transpose"]) == 2
    message = capsys.readouterr().err.strip().splitlines()[-1]
    assert "different architecture: upsample is 'resize'" in message and "not 'transpose'" in message
    assert sorted(p.name for p in (out / "checkpoints").iterdir()) == before
    # Not given: the run's own setting, so its checkpoint restores into the resize generator.
    assert cifar_cli([*argv, "--out", str(out), "--resume", "--max-steps", "3"]) == 0
    record = json.loads((out / "config.json").read_text())
    assert record["config"]["upsample"] == "resize" and record["resumed"]
